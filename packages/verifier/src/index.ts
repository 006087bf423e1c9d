// The package: the Fastify plugin (default export) and everything of ./core.
export { authVerifier, default } from './fastify.js'
export type { AuthVerifierPluginOptions } from './fastify.js'
export * from './core.js'
