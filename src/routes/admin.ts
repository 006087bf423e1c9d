import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import {
  AdminSessionListSchema,
  AdminSessionParamsSchema,
  AdminUserParamsSchema,
  AdminUserQuerySchema,
  AdminUserSchema
} from '../../schemas/admin.js'
import { ErrorRef, NoContentSchema } from '../../schemas/common.js'
import { disableUser, enableUser, endSessionsForAdmin, findUserForAdmin, listSessionsForAdmin, type AdminActor } from '../services/admin.js'
import { clientInfo } from '../client-info.js'

// docs/api.md, "Admin endpoints": for support tools, as machine clients with `sessions:admin`.
const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', app.requireScope('sessions:admin'))
  const actorOf = (request: FastifyRequest): AdminActor => ({ ...clientInfo(request), clientId: request.serviceClient!.clientId })
  const security = [{ clientToken: ['sessions:admin'] }]
  const refusals = { 401: ErrorRef, 403: ErrorRef, 503: ErrorRef }
  const tags = ['admin']

  app.get('/users', {
    schema: {
      tags,
      summary: 'Find a user by email',
      security,
      querystring: AdminUserQuerySchema,
      response: { 200: AdminUserSchema, 400: ErrorRef, 404: ErrorRef, ...refusals }
    },
    handler: async (request) => findUserForAdmin(app.authContext, actorOf(request), request.query.email)
  })

  app.get('/users/:id/sessions', {
    schema: {
      tags,
      summary: "A user's live sessions, newest first",
      security,
      params: AdminUserParamsSchema,
      response: { 200: AdminSessionListSchema, 404: ErrorRef, ...refusals }
    },
    handler: async (request) => listSessionsForAdmin(app.authContext, actorOf(request), request.params.id)
  })

  app.delete('/users/:id/sessions', {
    schema: {
      tags,
      summary: 'End every session of a user (like logout with all_devices)',
      security,
      params: AdminUserParamsSchema,
      response: { 204: NoContentSchema, 404: ErrorRef, ...refusals }
    },
    handler: async (request, reply) => {
      await endSessionsForAdmin(app.authContext, actorOf(request), request.params.id)
      return reply.code(204).send()
    }
  })

  app.delete('/users/:id/sessions/:sid', {
    schema: {
      tags,
      summary: "End one of a user's sessions",
      security,
      params: AdminSessionParamsSchema,
      response: { 204: NoContentSchema, 404: ErrorRef, ...refusals }
    },
    handler: async (request, reply) => {
      await endSessionsForAdmin(app.authContext, actorOf(request), request.params.id, request.params.sid)
      return reply.code(204).send()
    }
  })

  app.post('/users/:id/disable', {
    schema: {
      tags,
      summary: 'Disable a user: every session ends, login and refresh are refused until enabled',
      security,
      params: AdminUserParamsSchema,
      response: { 204: NoContentSchema, 404: ErrorRef, ...refusals }
    },
    handler: async (request, reply) => {
      await disableUser(app.authContext, actorOf(request), request.params.id)
      return reply.code(204).send()
    }
  })

  app.post('/users/:id/enable', {
    schema: {
      tags,
      summary: 'Enable a disabled user again',
      security,
      params: AdminUserParamsSchema,
      response: { 204: NoContentSchema, 404: ErrorRef, ...refusals }
    },
    handler: async (request, reply) => {
      await enableUser(app.authContext, actorOf(request), request.params.id)
      return reply.code(204).send()
    }
  })
}

export default adminRoutes
