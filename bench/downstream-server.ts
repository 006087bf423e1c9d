// The downstream service of the `downstream` scenario and of the propagation probe (bench/README.md):
// one Fastify process with two routes that answer 204 to the same access tokens,
//   GET /protected  behind the verifier's plugin (`app.requireAuth`): offline RFC 9068 checks with
//                   jose plus the revocation map its own SSF poll stream keeps up to date;
//   GET /bare       a plain jose `jwtVerify` against a local copy of the service's JWKS (fetched
//                   once at start) with the same checks, and no revocation: the honest baseline.
// GET /status is the verifier's status; GET /ready answers once the stream is caught up.
//
// The verifier is imported from the workspace's sources (run with tsx): the package's dist/ is
// only built by `npm pack`, and the code is the same.
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import authVerifier, { bearerToken, challengeFor, VerifierError } from '../packages/verifier/src/index.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (!value) {
    console.error(`${name} is required`)
    process.exit(1)
  }
  return value
}

const host = process.env.HOST ?? '127.0.0.1'
if (host !== '127.0.0.1') {
  console.error('the bench\'s downstream service listens on 127.0.0.1 only')
  process.exit(1)
}
const port = Number(env('PORT'))
const issuer = env('DOWNSTREAM_ISSUER')
const audience = env('DOWNSTREAM_AUDIENCE')
// The verifier's own defaults, so that /bare checks exactly what /protected checks but revocation.
const ALGORITHMS = ['EdDSA', 'ES256']
const CLOCK_TOLERANCE_SEC = 5
const MAX_TOKEN_AGE_SEC = 3600

// The JWKS the verifier also reads, found the way it finds it (RFC 8414 metadata).
const metadata = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(10_000) })).json() as { jwks_uri: string }
const jwks = await (await fetch(metadata.jwks_uri, { signal: AbortSignal.timeout(10_000) })).json() as JSONWebKeySet
const localKeys = createLocalJWKSet(jwks)

const app = Fastify({ logger: { level: 'warn' }, pluginTimeout: 30_000 })
await app.register(authVerifier, {
  issuer,
  audience,
  clientId: env('DOWNSTREAM_CLIENT_ID'),
  clientSecret: env('DOWNSTREAM_CLIENT_SECRET'),
  maxTokenAgeSec: MAX_TOKEN_AGE_SEC,
  clockToleranceSec: CLOCK_TOLERANCE_SEC,
  algorithms: ALGORITHMS,
  readyTimeoutMs: 25_000
})

app.get('/protected', { onRequest: app.requireAuth }, async (_request, reply) => reply.code(204).send())

app.get('/bare', async (request: FastifyRequest, reply: FastifyReply) => {
  const token = bearerToken(request.headers.authorization)
  try {
    if (token === undefined) throw new VerifierError('invalid_token', 'no bearer token')
    await jwtVerify(token, localKeys, {
      typ: 'at+jwt',
      issuer,
      audience,
      algorithms: ALGORITHMS,
      clockTolerance: CLOCK_TOLERANCE_SEC,
      maxTokenAge: MAX_TOKEN_AGE_SEC,
      requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub', 'sid', 'client_id', 'jti']
    })
  } catch (error) {
    const answer = challengeFor(error instanceof VerifierError ? error : new VerifierError('invalid_token', 'invalid token'))
    return reply.code(answer.statusCode).headers(answer.headers).send(answer.body)
  }
  return reply.code(204).send()
})

app.get('/status', async () => app.authVerifier.status)
app.get('/ready', async (_request, reply) => reply.code(204).send())

const close = () => {
  const forced = setTimeout(() => process.exit(0), 5_000)
  forced.unref()
  // Closing the app closes the verifier, which deletes its stream at the service.
  void app.close().finally(() => process.exit(0))
}
process.once('SIGTERM', close)
process.once('SIGINT', close)
await app.listen({ host, port })
