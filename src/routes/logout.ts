import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { LogoutRequestSchema } from '../../schemas/auth.js'
import { ErrorRef, NoContentSchema } from '../../schemas/common.js'
import { InvalidAccessTokenError } from '../plugins/http-errors.js'
import { logout } from '../services/sessions.js'
import { clientInfo } from '../client-info.js'

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0
}

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
    // Logging out the current session (no body, or {}) needs no separate session check: the
    // DELETE is the check (services/sessions.ts), so the whole logout is one round trip. With any
    // other body the session is checked before the body is even validated.
    onRequest: app.authenticateToken,
    preValidation: async (request) => {
      // No body at all means the same as {} (a JSON `null` stays null and fails validation).
      if (request.body === undefined) request.body = {}
      if (isEmptyObject(request.body)) return
      if (!(await app.sessionLiveness.isLive(request.user.sessionId, request.user.userId))) {
        throw new InvalidAccessTokenError()
      }
    },
    schema: {
      tags: ['auth'],
      summary: 'End the current session, the session of a refresh token, or every session',
      security: [{ bearerAuth: [] }],
      body: LogoutRequestSchema,
      response: { 204: NoContentSchema, 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 413: ErrorRef, 415: ErrorRef }
    },
    handler: async (request, reply) => {
      const { refresh_token: refreshToken, all_devices: allDevices, keep_current: keepCurrent } = request.body ?? {}
      await logout(app.authContext, request.user, { refreshToken, allDevices, keepCurrent }, clientInfo(request))
      return reply.code(204).send()
    }
  })
}

export default logoutRoutes
