import { Type } from '@sinclair/typebox'
import { Nullable, TimestampSchema, UuidSchema } from './common.js'

/** What describes a session wherever it is listed (GET /sessions, the admin endpoints). */
export const SessionProperties = {
  id: UuidSchema,
  created_at: TimestampSchema,
  last_used_at: TimestampSchema,
  expires_at: TimestampSchema,
  user_agent: Nullable(Type.String()),
  ip: Nullable(Type.String())
}

export const SessionSchema = Type.Object(
  {
    ...SessionProperties,
    current: Type.Boolean({ description: 'True for the session of the calling access token' })
  },
  { $id: 'Session', title: 'Session' }
)

export const SessionListSchema = Type.Array(Type.Ref(SessionSchema))

// Contract: DELETE /sessions/:id answers 404 for "not found or not yours", so an id that is not
// a UUID is simply not found (services/sessions.ts), not a 400.
export const SessionParamsSchema = Type.Object(
  { id: Type.String({ description: 'Session id (a UUID)' }) },
  { additionalProperties: false }
)

/**
 * The response headers of GET /verify's 204, as @fastify/swagger reads a response's `headers`:
 * header name -> schema (each `description` becomes the header's description). Documentation
 * only: Fastify does not check response headers.
 */
export const VerifyHeadersSchema = {
  'x-user-id': Type.String({ format: 'uuid', description: 'Id of the user the access token belongs to' }),
  'x-session-id': Type.String({ format: 'uuid', description: 'Id of the session the access token belongs to' })
}
