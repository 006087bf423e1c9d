import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import {
  LoginRequestSchema,
  PasswordChangeRequestSchema,
  RefreshRequestSchema,
  RegisterRequestSchema,
  RevokeRequestSchema,
  TokenPairSchema
} from '../../schemas/auth.js'
import { ErrorRef, NoContentSchema } from '../../schemas/common.js'
import { changePassword, login, register } from '../services/accounts.js'
import { InvalidRefreshTokenError } from '../services/errors.js'
import { refreshSession, revokeSession } from '../services/sessions.js'
import { clientInfo } from '../client-info.js'

const TokenPairRef = Type.Ref(TokenPairSchema)

const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Per IP and per account (plugins/rate-limits.ts). Bodies are validated before preHandler runs.
  const emailOf = (request: FastifyRequest) => (request.body as { email: string }).email.toLowerCase()
  // Verified once per request, whoever asks first (the limiter or the handler).
  const refreshTokenOf = (request: FastifyRequest) =>
    app.refreshTokenOf(request, (request.body as { refresh_token: string }).refresh_token)
  const revokedTokenOf = (request: FastifyRequest) => app.refreshTokenOf(request, (request.body as { token: string }).token)

  // At the bound of password hashing, a registration or login is refused before its body is
  // even parsed: a flood's refused requests must cost little (services/passwords.ts, `full`).
  const refuseWhenHashingFull = async () => app.authContext.passwords.refuseWhenFull()

  app.post('/register', {
    onRequest: refuseWhenHashingFull,
    preHandler: app.limitRequests('register', emailOf),
    schema: {
      tags: ['auth'],
      summary: 'Create an account and its first session',
      body: RegisterRequestSchema,
      response: { 201: TokenPairRef, 400: ErrorRef, 409: ErrorRef, 415: ErrorRef, 429: ErrorRef }
    },
    handler: async (request, reply) => {
      const { email, password, display_name: displayName } = request.body
      return reply.code(201).send(await register(app.authContext, { email, password, displayName }, clientInfo(request)))
    }
  })

  app.post('/login', {
    onRequest: refuseWhenHashingFull,
    // Failures per (email, IP) refuse, failures per email slow; a success is never counted.
    ...app.limitLogin(emailOf),
    schema: {
      tags: ['auth'],
      summary: 'Log in: opens a new session',
      body: LoginRequestSchema,
      response: { 200: TokenPairRef, 400: ErrorRef, 401: ErrorRef, 415: ErrorRef, 429: ErrorRef }
    },
    handler: async (request) => login(app.authContext, request.body, clientInfo(request))
  })

  app.post('/refresh', {
    // Per IP, failed token checks per IP, rotations per session (a grace-window replay is not one).
    preHandler: app.limitRefresh(refreshTokenOf),
    schema: {
      tags: ['auth'],
      summary: 'Rotate the refresh token and get a new token pair',
      body: RefreshRequestSchema,
      response: { 200: TokenPairRef, 400: ErrorRef, 401: ErrorRef, 415: ErrorRef, 429: ErrorRef }
    },
    handler: async (request) => {
      const claims = refreshTokenOf(request)
      if (!claims) throw new InvalidRefreshTokenError()
      return refreshSession(app.authContext, claims, clientInfo(request))
    }
  })

  app.post('/revoke', {
    // Per IP, and tokens that are not genuine per IP (refused before their signature is checked).
    preHandler: app.limitAuthentication('revoke', (request) => revokedTokenOf(request) !== undefined),
    schema: {
      tags: ['auth'],
      summary: 'RFC 7009 token revocation: ends the session of a refresh token; always 200',
      body: RevokeRequestSchema,
      response: { 200: NoContentSchema, 400: ErrorRef, 415: ErrorRef, 429: ErrorRef }
    },
    handler: async (request, reply) => {
      await revokeSession(app.authContext, revokedTokenOf(request), clientInfo(request))
      return reply.code(200).send()
    }
  })

  app.post('/password', {
    onRequest: app.authenticateSession,
    preHandler: app.limitRequests('password', (request) => request.user.userId),
    schema: {
      tags: ['auth'],
      summary: 'Change the password; every other session of the user is deleted',
      security: [{ bearerAuth: [] }],
      body: PasswordChangeRequestSchema,
      response: { 204: NoContentSchema, 400: ErrorRef, 401: ErrorRef, 415: ErrorRef, 429: ErrorRef }
    },
    handler: async (request, reply) => {
      const change = { currentPassword: request.body.current_password, newPassword: request.body.new_password }
      await changePassword(app.authContext, request.user, change, clientInfo(request))
      return reply.code(204).send()
    }
  })
}

export default authRoutes
