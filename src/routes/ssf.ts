import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { ErrorRef, NoContentSchema } from '../../schemas/common.js'
import {
  PollParamsSchema,
  PollRequestSchema,
  PollResponseSchema,
  StatusUpdateSchema,
  StreamConfigRef,
  StreamConfigSchema,
  StreamCreateSchema,
  StreamIdQuerySchema,
  StreamQuerySchema,
  StreamReplaceSchema,
  StreamStatusSchema,
  StreamUpdateSchema,
  VerificationRequestSchema
} from '../../schemas/ssf.js'

// docs/ssf.md: the transmitter's endpoints, for machine clients with `ssf.manage` (change) or
// `ssf.read` (read, poll). A client sees only its own streams.
const ssfRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addSchema(StreamConfigSchema)
  const { streams } = app.ssf
  const clientOf = (request: FastifyRequest): string => request.serviceClient!.clientId
  const manage = { onRequest: app.requireScope('ssf.manage') }
  const read = { onRequest: app.requireScope('ssf.read') }
  const refusals = { 401: ErrorRef, 403: ErrorRef, 503: ErrorRef }
  const withBody = { 400: ErrorRef, 413: ErrorRef, 415: ErrorRef }
  const tags = ['shared signals']
  const managed = [{ clientToken: ['ssf.manage'] }]
  const readable = [{ clientToken: ['ssf.read'] }]

  app.post('/streams', {
    ...manage,
    schema: {
      tags,
      summary: 'Create a stream (SSF 1.0 §8.1.1.1); a new stream starts with the revocations whose access tokens may still be alive',
      security: managed,
      body: StreamCreateSchema,
      response: { 201: StreamConfigRef, 409: ErrorRef, ...withBody, ...refusals }
    },
    handler: async (request, reply) => reply.code(201).send(await streams.create(clientOf(request), request.body))
  })

  app.get('/streams', {
    ...read,
    schema: {
      tags,
      summary: "One stream's configuration (stream_id), or the list of the caller's streams",
      security: readable,
      querystring: StreamQuerySchema,
      response: { 200: { anyOf: [StreamConfigRef, { type: 'array', items: StreamConfigRef }] }, 400: ErrorRef, 404: ErrorRef, ...refusals }
    },
    handler: async (request) => streams.read(clientOf(request), request.query.stream_id)
  })

  app.patch('/streams', {
    ...manage,
    schema: {
      tags,
      summary: "Update a stream's configuration (SSF 1.0 §8.1.1.3)",
      security: managed,
      body: StreamUpdateSchema,
      response: { 200: StreamConfigRef, 404: ErrorRef, ...withBody, ...refusals }
    },
    handler: async (request) => streams.update(clientOf(request), request.body, false)
  })

  app.put('/streams', {
    ...manage,
    schema: {
      tags,
      summary: "Replace a stream's configuration (SSF 1.0 §8.1.1.4)",
      security: managed,
      body: StreamReplaceSchema,
      response: { 200: StreamConfigRef, 404: ErrorRef, ...withBody, ...refusals }
    },
    handler: async (request) => streams.update(clientOf(request), request.body, true)
  })

  app.delete('/streams', {
    ...manage,
    schema: {
      tags,
      summary: 'Delete a stream',
      security: managed,
      querystring: StreamIdQuerySchema,
      response: { 204: NoContentSchema, 400: ErrorRef, 404: ErrorRef, ...refusals }
    },
    handler: async (request, reply) => {
      await streams.remove(clientOf(request), request.query.stream_id)
      return reply.code(204).send()
    }
  })

  app.get('/status', {
    ...read,
    schema: {
      tags,
      summary: "A stream's status, with its delivery state",
      security: readable,
      querystring: StreamIdQuerySchema,
      response: { 200: StreamStatusSchema, 400: ErrorRef, 404: ErrorRef, ...refusals }
    },
    handler: async (request) => streams.status(clientOf(request), request.query.stream_id)
  })

  app.post('/status', {
    ...manage,
    schema: {
      tags,
      summary: "Change a stream's status: paused holds events, disabled drops them",
      security: managed,
      body: StatusUpdateSchema,
      response: { 200: StreamStatusSchema, 404: ErrorRef, ...withBody, ...refusals }
    },
    handler: async (request) => streams.setStatus(clientOf(request), request.body.stream_id, request.body.status, request.body.reason)
  })

  app.post('/verify', {
    ...manage,
    schema: {
      tags,
      summary: 'Send a verification event into the stream (delivered before the waiting events)',
      security: managed,
      body: VerificationRequestSchema,
      response: { 204: NoContentSchema, 404: ErrorRef, 429: ErrorRef, ...withBody, ...refusals }
    },
    handler: async (request, reply) => {
      await streams.verify(clientOf(request), request.body.stream_id, request.body.state)
      return reply.code(204).send()
    }
  })

  app.post('/poll/:stream_id', {
    ...read,
    // No body at all means {} (RFC 8936 §2.4: every member is optional).
    preValidation: (request, _reply, done) => {
      if (request.body === undefined) request.body = {}
      done()
    },
    schema: {
      tags,
      summary: 'Poll a stream (RFC 8936): acknowledge, report errors, and receive SETs; a long poll unless returnImmediately',
      security: readable,
      params: PollParamsSchema,
      body: PollRequestSchema,
      response: { 200: PollResponseSchema, 404: ErrorRef, ...withBody, ...refusals }
    },
    handler: async (request) => {
      const abort = new AbortController()
      // The receiver went away: stop waiting for it.
      const gone = () => abort.abort()
      request.raw.socket?.once('close', gone)
      try {
        return await streams.poll(clientOf(request), request.params.stream_id, request.body, abort.signal)
      } finally {
        request.raw.socket?.off('close', gone)
      }
    }
  })
}

export default ssfRoutes
