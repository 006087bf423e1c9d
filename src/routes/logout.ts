import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { LogoutRequestSchema } from '../../schemas/auth.js'
import { ErrorRef, NoContentSchema } from '../../schemas/common.js'
import { logout } from '../services/sessions.js'
import { clientInfo } from './client-info.js'

const logoutRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Contract, logout §2: an empty body is allowed even with Content-Type: application/json.
  // Scoped to this plugin; everywhere else an empty JSON body stays a 400.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') {
      done(null, undefined)
      return
    }
    parseJson(request, body as string, done)
  })

  app.post('/logout', {
    // Authenticate first: without a valid token nothing about the body is revealed or done.
    onRequest: app.authenticate,
    // No body at all means the same as {} (a JSON `null` stays null and fails validation).
    preValidation: async (request) => {
      if (request.body === undefined) request.body = {}
    },
    schema: {
      tags: ['auth'],
      summary: 'End the current session, the session of a refresh token, or every session',
      security: [{ bearerAuth: [] }],
      body: LogoutRequestSchema,
      response: { 204: NoContentSchema, 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 413: ErrorRef, 415: ErrorRef }
    },
    handler: async (request, reply) => {
      await logout(app.authContext, request.user, request.body, clientInfo(request))
      return reply.code(204).send()
    }
  })
}

export default logoutRoutes
