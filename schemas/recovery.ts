import { Type, type Static } from '@sinclair/typebox'
import { EmailSchema } from './common.js'

// Account recovery (docs/api.md, "POST /password/forgot" and the three after it).
const NewPasswordSchema = Type.String({ minLength: 8, maxLength: 256 })
/** A token from a mail: 43 characters of URL-safe base64; anything else is simply not one (400 AUTH_INVALID_RECOVERY_TOKEN). */
const MailTokenSchema = Type.String({ minLength: 1, maxLength: 512 })

export const PasswordForgotRequestSchema = Type.Object(
  { email: EmailSchema },
  { additionalProperties: false, title: 'PasswordForgotRequest' }
)
export type PasswordForgotRequest = Static<typeof PasswordForgotRequestSchema>

export const PasswordResetRequestSchema = Type.Object(
  { token: MailTokenSchema, new_password: NewPasswordSchema },
  { additionalProperties: false, title: 'PasswordResetRequest' }
)
export type PasswordResetRequest = Static<typeof PasswordResetRequestSchema>

export const EmailVerifyRequestSchema = Type.Object(
  { token: MailTokenSchema },
  { additionalProperties: false, title: 'EmailVerifyRequest' }
)
export type EmailVerifyRequest = Static<typeof EmailVerifyRequestSchema>
