// The Fastify plugin: `app.register(authVerifier, options)`, then `{ onRequest: app.requireAuth }`
// on the routes to protect and `request.auth` in their handlers.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { challengeFor, bearerToken } from './http.js'
import { createVerifier, type AccessTokenClaims, type Verifier, type VerifierOptions } from './verifier.js'

export interface AuthVerifierPluginOptions extends Partial<VerifierOptions> {
  /** A verifier made elsewhere (then the other options are not used; it is closed with the app all the same). */
  verifier?: Verifier
  /** Wait for the first sync in onReady (default true): app.ready() rejects if it fails. */
  waitForReady?: boolean
  /** The Retry-After of a 503, seconds. Default 5. */
  retryAfterSec?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: 401/503 unless the request carries a valid, unrevoked access token. */
    requireAuth: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>
    authVerifier: Verifier
  }
  interface FastifyRequest {
    /** The token's claims, on routes behind `app.requireAuth` (null elsewhere). */
    auth: AccessTokenClaims
  }
}

const plugin: FastifyPluginAsync<AuthVerifierPluginOptions> = async (app: FastifyInstance, options) => {
  const { verifier: given, waitForReady = true, retryAfterSec = 5, ...verifierOptions } = options
  // Fastify gives an onReady hook pluginTimeout (10 s by default, 0: none): give up just before it,
  // so that app.ready() fails with the verifier's reason rather than a bare hook timeout.
  const pluginTimeout = app.initialConfig.pluginTimeout ?? 10_000
  const limit = pluginTimeout > 0 ? Math.max(1_000, pluginTimeout - 500) : Infinity
  const verifier = given ?? createVerifier({
    logger: app.log.child({ name: 'auth-verifier' }),
    ...(verifierOptions as VerifierOptions),
    readyTimeoutMs: Math.min(verifierOptions.readyTimeoutMs ?? 30_000, limit)
  })
  app.decorate('authVerifier', verifier)
  app.decorateRequest('auth', null as unknown as AccessTokenClaims)

  app.decorate('requireAuth', async function requireAuth(request: FastifyRequest, reply: FastifyReply) {
    const token = bearerToken(request.headers.authorization)
    if (token === undefined) {
      const answer = challengeFor(undefined)
      return reply.code(answer.statusCode).headers(answer.headers).send(answer.body)
    }
    try {
      request.auth = await verifier.verify(token)
      return undefined
    } catch (error) {
      const answer = challengeFor(error, retryAfterSec)
      if (answer.statusCode !== 401) request.log.warn({ error: error instanceof Error ? error.message : String(error) }, 'token not checked')
      return reply.code(answer.statusCode).headers(answer.headers).send(answer.body)
    }
  })

  if (waitForReady) {
    app.addHook('onReady', async () => {
      try {
        await verifier.ready()
      } catch (error) {
        await verifier.close()
        throw error
      }
    })
  }
  app.addHook('onClose', async () => verifier.close())
}

/** The Fastify plugin (fastify-plugin: the decorators reach the app it is registered on). */
export const authVerifier = fp(plugin, { fastify: '5.x', name: '@auth-service/verifier' })
export default authVerifier
