import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorRef, NoContentSchema } from '../../schemas/common.js'
import { SessionListSchema, SessionParamsSchema } from '../../schemas/sessions.js'
import { deleteSessionById, listSessions } from '../services/sessions.js'
import { clientInfo } from '../client-info.js'

const sessionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/sessions', {
    onRequest: app.authenticateSession,
    schema: {
      tags: ['sessions'],
      summary: "The caller's live sessions (one per device); `current` marks this one",
      security: [{ bearerAuth: [] }],
      response: { 200: SessionListSchema, 401: ErrorRef, 503: ErrorRef }
    },
    handler: async (request) => listSessions(app.authContext, request.user)
  })

  app.delete('/sessions/:id', {
    onRequest: app.authenticateSession,
    schema: {
      tags: ['sessions'],
      summary: 'End one of your sessions (the current one included)',
      security: [{ bearerAuth: [] }],
      params: SessionParamsSchema,
      response: { 204: NoContentSchema, 401: ErrorRef, 404: ErrorRef, 503: ErrorRef }
    },
    handler: async (request, reply) => {
      await deleteSessionById(app.authContext, request.user, request.params.id, clientInfo(request))
      return reply.code(204).send()
    }
  })
}

export default sessionRoutes
