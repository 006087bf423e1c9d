import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { HealthSchema } from '../../schemas/common.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health/live', {
    schema: { tags: ['health'], summary: 'The process is up', response: { 200: HealthSchema } },
    handler: async () => ({ status: 'ok' })
  })

  app.get('/health/ready', {
    schema: {
      tags: ['health'],
      summary: 'Ready to serve: 503 while the database is unreachable',
      response: { 200: HealthSchema, 503: HealthSchema }
    },
    handler: async (_request, reply) => {
      const up = await app.database.ping()
      return reply.code(up ? 200 : 503).send({ status: up ? 'ok' : 'database unavailable' })
    }
  })
}

export default healthRoutes
