// Everything but the Fastify plugin: for other frameworks, without importing fastify-plugin.
export { createVerifier, CREDENTIAL_CHANGE, POLL_DELIVERY, SESSION_REVOKED, STREAM_SCOPE, VERIFICATION } from './verifier.js'
export type { AccessTokenClaims, FetchLike, Verifier, VerifierLogger, VerifierOptions, VerifierState, VerifierStatus } from './verifier.js'
export { isVerifierError, VerifierError } from './errors.js'
export type { VerifierErrorCode } from './errors.js'
export { bearerToken, challengeFor } from './http.js'
