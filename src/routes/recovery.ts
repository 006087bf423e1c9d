import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { ErrorRef, NoContentSchema } from '../../schemas/common.js'
import { EmailVerifyRequestSchema, PasswordForgotRequestSchema, PasswordResetRequestSchema } from '../../schemas/recovery.js'
import { clientInfo } from '../client-info.js'
import { requestEmailVerification, requestPasswordReset, resetPassword, verifyEmail } from '../services/recovery.js'

// Account recovery (docs/api.md, "POST /password/forgot" and after; docs/recovery.md).
const recoveryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const emailOf = (request: FastifyRequest) => (request.body as { email: string }).email.trim().toLowerCase()

  app.post('/password/forgot', {
    // Per IP and per address, known or not (the same count either way).
    preHandler: app.limitRequests('password-forgot', emailOf),
    // The sender starts once the answer has left, so none of its work (a token for a known
    // address, nothing for an unknown one) is in the answer's time.
    onResponse: (_request, reply, done) => {
      if (reply.statusCode === 202) app.recovery.wake()
      done()
    },
    schema: {
      tags: ['recovery'],
      summary: 'Ask for a password-reset mail; 202 whether or not the address has an account',
      body: PasswordForgotRequestSchema,
      response: { 202: { ...NoContentSchema, description: 'Accepted: a mail follows if the address has an account' }, 400: ErrorRef, 415: ErrorRef, 429: ErrorRef, 503: ErrorRef }
    },
    handler: async (request, reply) => {
      await requestPasswordReset(app.authContext, request.body.email)
      return reply.code(202).send()
    }
  })

  app.post('/password/reset', {
    preHandler: app.limitRequests('password-reset'),
    schema: {
      tags: ['recovery'],
      summary: 'Set a new password with the token of a reset mail; every session of the account ends',
      body: PasswordResetRequestSchema,
      response: { 204: NoContentSchema, 400: ErrorRef, 415: ErrorRef, 429: ErrorRef, 503: ErrorRef }
    },
    handler: async (request, reply) => {
      await resetPassword(app.authContext, request.body.token, request.body.new_password, clientInfo(request))
      return reply.code(204).send()
    }
  })

  app.post('/email/verification', {
    onRequest: app.authenticateSession,
    preHandler: app.limitRequests('email-verification', (request) => request.user.userId),
    schema: {
      tags: ['recovery'],
      summary: "Send a verification mail to the caller's address",
      security: [{ bearerAuth: [] }],
      response: { 202: { ...NoContentSchema, description: 'Accepted: the mail is on its way' }, 401: ErrorRef, 409: ErrorRef, 429: ErrorRef, 503: ErrorRef }
    },
    handler: async (request, reply) => {
      await requestEmailVerification(app.authContext, app.recovery, request.user, clientInfo(request))
      return reply.code(202).send()
    }
  })

  app.post('/email/verify', {
    preHandler: app.limitRequests('email-verify'),
    schema: {
      tags: ['recovery'],
      summary: 'Confirm the address with the token of a verification mail',
      body: EmailVerifyRequestSchema,
      response: { 204: NoContentSchema, 400: ErrorRef, 415: ErrorRef, 429: ErrorRef, 503: ErrorRef }
    },
    handler: async (request, reply) => {
      await verifyEmail(app.authContext, request.body.token, clientInfo(request))
      return reply.code(204).send()
    }
  })
}

export default recoveryRoutes
