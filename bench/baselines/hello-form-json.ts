// Baseline 5: bare Fastify, POST /api/v1/auth/introspect with an
// application/x-www-form-urlencoded body parsed by @fastify/formbody, answered 200 with a fixed
// JSON object shaped like an RFC 7662 answer for an active access token (the members, types and
// value lengths the service's answer has), serialized by fast-json-stringify through a response
// schema. No client authentication, no token check, no body validation. The HTTP shape of
// /introspect without its work: the other half of the HTTP-shape ceiling (hello-form-json ÷
// hello-204, bench/README.md). Same path as the service's, so the bench's requests (the same
// form body, a Basic header of the same length) are byte for byte the size of introspect's.
import { randomUUID } from 'node:crypto'
import formBody from '@fastify/formbody'
import Fastify from 'fastify'
import { serve } from './common.js'

const now = Math.floor(Date.now() / 1000)
/** As the service answers for one of its access tokens: UUIDs, its default client id and audience, its issuer URL's length. */
const ANSWER = Object.freeze({
  active: true,
  token_type: 'access_token',
  sub: randomUUID(),
  sid: randomUUID(),
  client_id: 'auth-service',
  iss: `http://127.0.0.1:${process.env.PORT ?? 3000}`,
  aud: 'api',
  exp: now + 900,
  iat: now,
  jti: randomUUID()
})

const answerSchema = {
  type: 'object',
  properties: {
    active: { type: 'boolean' },
    token_type: { type: 'string' },
    sub: { type: 'string' },
    sid: { type: 'string' },
    client_id: { type: 'string' },
    iss: { type: 'string' },
    aud: { type: 'string' },
    exp: { type: 'integer' },
    iat: { type: 'integer' },
    jti: { type: 'string' }
  },
  additionalProperties: false
}

await serve(async () => {
  const app = Fastify({ logger: false })
  await app.register(formBody)
  app.post('/api/v1/auth/introspect', { schema: { response: { 200: answerSchema } } }, async (request) => {
    // The parsed form is used, as a handler would: a body without a token is a 400.
    if (typeof (request.body as { token?: unknown } | undefined)?.token !== 'string') {
      throw Object.assign(new Error('token is required'), { statusCode: 400 })
    }
    return ANSWER
  })
  return app
})
