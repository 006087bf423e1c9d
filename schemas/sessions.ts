import { Type } from '@sinclair/typebox'
import { Nullable, TimestampSchema, UuidSchema } from './common.js'

export const SessionSchema = Type.Object(
  {
    id: UuidSchema,
    created_at: TimestampSchema,
    last_used_at: TimestampSchema,
    expires_at: TimestampSchema,
    user_agent: Nullable(Type.String()),
    ip: Nullable(Type.String()),
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

export const VerifyHeadersSchema = Type.Object({
  'x-user-id': UuidSchema,
  'x-session-id': UuidSchema
})
