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

export const SessionParamsSchema = Type.Object({ id: UuidSchema }, { additionalProperties: false })

export const VerifyHeadersSchema = Type.Object({
  'x-user-id': UuidSchema,
  'x-session-id': UuidSchema
})
