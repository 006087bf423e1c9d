// Baseline 2: a bare @fastify/jwt route that verifies the Bearer token with the service's
// algorithm and key and answers 204. The ceiling for GET /verify: a signature check and nothing
// else (no typ/iss/aud checks, no session liveness, no extra hooks).
import fastifyJwt from '@fastify/jwt'
import Fastify from 'fastify'
import { jwtSettings, serve } from './common.js'

const { algorithm, key } = jwtSettings()

await serve(async () => {
  const app = Fastify({ logger: false })
  await app.register(fastifyJwt, {
    secret: algorithm === 'HS256' ? key : { public: key, private: '' },
    verify: { algorithms: [algorithm] }
  })
  app.get('/verify', async (request, reply) => {
    await request.jwtVerify() // 401 from @fastify/jwt when it fails
    return reply.code(204).send()
  })
  return app
})
