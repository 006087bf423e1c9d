import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { JwksSchema } from '../../schemas/well-known.js'

const wellKnownRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/.well-known/jwks.json', {
    schema: {
      tags: ['keys'],
      summary: 'Public keys that verify access tokens (every configured key, by kid)',
      response: { 200: JwksSchema }
    },
    handler: async (_request, reply) => {
      // Verifiers may cache it; rotation keeps retired keys here until their tokens expire.
      return reply.header('cache-control', 'public, max-age=300').send(app.keys.jwks)
    }
  })
}

export default wellKnownRoutes
