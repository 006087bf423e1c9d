import { Type, type Static } from '@sinclair/typebox'
import { EmailSchema, Nullable, StoredTextSchema, TimestampSchema, UuidSchema } from './common.js'

// NIST SP 800-63B: at least 8 characters; the upper bound only stops hashing huge inputs.
const NewPasswordSchema = Type.String({ minLength: 8, maxLength: 256 })
// Logging in never applies today's policy to an old password, only the size bound.
const PasswordSchema = Type.String({ minLength: 1, maxLength: 256 })
const JwtSchema = Type.String({ minLength: 1, maxLength: 8192 })

export const RegisterRequestSchema = Type.Object(
  {
    email: EmailSchema,
    password: NewPasswordSchema,
    display_name: Type.Optional(Nullable(StoredTextSchema({ minLength: 1, maxLength: 100 })))
  },
  { additionalProperties: false, title: 'RegisterRequest' }
)
export type RegisterRequest = Static<typeof RegisterRequestSchema>

export const LoginRequestSchema = Type.Object(
  { email: EmailSchema, password: PasswordSchema },
  { additionalProperties: false, title: 'LoginRequest' }
)
export type LoginRequest = Static<typeof LoginRequestSchema>

export const RefreshRequestSchema = Type.Object(
  { refresh_token: JwtSchema },
  { additionalProperties: false, title: 'RefreshRequest' }
)
export type RefreshRequest = Static<typeof RefreshRequestSchema>

export const LogoutRequestSchema = Type.Object(
  {
    refresh_token: Type.Optional(JwtSchema),
    all_devices: Type.Optional(Type.Boolean()),
    keep_current: Type.Optional(Type.Boolean())
  },
  {
    additionalProperties: false,
    title: 'LogoutRequest',
    description:
      'Optional. Empty or {}: end the current session. refresh_token: end the session it belongs to. ' +
      'all_devices: end every session of the user (keep_current: all but this one).'
  }
)
export type LogoutRequest = Static<typeof LogoutRequestSchema>

export const RevokeRequestSchema = Type.Object(
  {
    token: Type.String({ maxLength: 8192 }),
    token_type_hint: Type.Optional(Type.String({ maxLength: 64 }))
  },
  { additionalProperties: false, title: 'RevokeRequest' }
)
export type RevokeRequest = Static<typeof RevokeRequestSchema>

export const PasswordChangeRequestSchema = Type.Object(
  { current_password: PasswordSchema, new_password: NewPasswordSchema },
  { additionalProperties: false, title: 'PasswordChangeRequest' }
)
export type PasswordChangeRequest = Static<typeof PasswordChangeRequestSchema>

export const UserSchema = Type.Object(
  {
    id: UuidSchema,
    email: Type.String(),
    display_name: Nullable(Type.String()),
    email_verified: Type.Boolean({ description: 'Whether the owner proved the address (POST /email/verify, or a password reset by mail)' }),
    created_at: TimestampSchema
  },
  { $id: 'User', title: 'User' }
)

export const TokenPairSchema = Type.Object(
  {
    user: Type.Ref(UserSchema),
    access_token: Type.String(),
    refresh_token: Type.String(),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the access token expires' })
  },
  { $id: 'TokenPair', title: 'TokenPair' }
)
