import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { UserSchema } from '../../schemas/auth.js'
import { ErrorRef } from '../../schemas/common.js'
import { getProfile } from '../services/accounts.js'

const meRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me', {
    onRequest: app.authenticateSession,
    schema: {
      tags: ['account'],
      summary: 'The calling user',
      security: [{ bearerAuth: [] }],
      response: { 200: Type.Ref(UserSchema), 401: ErrorRef, 503: ErrorRef }
    },
    handler: async (request) => getProfile(app.authContext, request.user)
  })
}

export default meRoutes
