import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorRef, NoContentSchema } from '../../schemas/common.js'
import { VerifyHeadersSchema } from '../../schemas/sessions.js'

const verifyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Gateway forward-auth (nginx auth_request, Traefik forwardAuth, Envoy ext_authz): the
  // authenticate hook does all the work; no password hashing and no body.
  app.get('/verify', {
    onRequest: app.authenticateSession,
    schema: {
      tags: ['gateway'],
      summary: 'Forward-auth check: 204 with x-user-id and x-session-id for a valid access token',
      security: [{ bearerAuth: [] }],
      response: {
        204: Type.Unsafe<undefined>({ ...NoContentSchema, headers: VerifyHeadersSchema }),
        401: ErrorRef,
        503: ErrorRef
      }
    },
    handler: async (request, reply) => {
      reply.header('x-user-id', request.user.userId)
      reply.header('x-session-id', request.user.sessionId)
      return reply.code(204).send()
    }
  })
}

export default verifyRoutes
