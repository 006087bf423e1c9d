import { Type } from '@sinclair/typebox'
import { EmailSchema, Nullable, TimestampSchema, UuidSchema } from './common.js'
import { SessionProperties } from './sessions.js'

export const AdminUserSchema = Type.Object(
  {
    id: UuidSchema,
    email: Type.String(),
    display_name: Nullable(Type.String()),
    email_verified: Type.Boolean(),
    created_at: TimestampSchema,
    disabled: Type.Boolean({ description: 'Disabled users can neither log in nor refresh' })
  },
  { title: 'AdminUser', additionalProperties: false }
)

export const AdminUserQuerySchema = Type.Object({ email: EmailSchema }, { additionalProperties: false })

// As GET /sessions answers, without `current` (an admin has no session of the user).
export const AdminSessionListSchema = Type.Array(Type.Object(SessionProperties, { title: 'AdminSession' }))

// Like DELETE /sessions/:id, an id that is not a UUID names nothing: 404, not 400.
export const AdminUserParamsSchema = Type.Object(
  { id: Type.String({ description: 'User id (a UUID)' }) },
  { additionalProperties: false }
)
export const AdminSessionParamsSchema = Type.Object(
  { id: Type.String({ description: 'User id (a UUID)' }), sid: Type.String({ description: 'Session id (a UUID)' }) },
  { additionalProperties: false }
)
