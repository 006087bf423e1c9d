// Baseline 4: bare Fastify, GET /api/v1/auth/verify answers 204 with two short headers (the
// x-user-id and x-session-id that /verify sets), checking nothing. The HTTP shape of /verify
// without its work: one half of the ceiling that bench/README.md calls the HTTP-shape ceiling
// (hello-form-json ÷ hello-204). Same path as the service's, so the bench's requests (verify's,
// Bearer header included) are byte for byte the size of verify's.
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import { serve } from './common.js'

const userId = randomUUID()
const sessionId = randomUUID()

await serve(async () => {
  const app = Fastify({ logger: false })
  app.get('/api/v1/auth/verify', async (_request, reply) => {
    reply.header('x-user-id', userId)
    reply.header('x-session-id', sessionId)
    return reply.code(204).send()
  })
  return app
})
