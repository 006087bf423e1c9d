// The password policy for every new password (docs/security.md, "Password policy"; ASVS 5
// V6.2.4 and V6.2.12): 8 to 256 characters, not a common or breached password, and not the
// account's own email address, its local part or its display name. Framework-free: register,
// the password change and any future password reset call the same function with plain values.
import { dictionary } from '@zxcvbn-ts/language-common'
import { WeakPasswordError } from './errors.js'

/** The length rules of schemas/auth.ts (`NewPasswordSchema`), in code points as the schema counts them. */
export const PASSWORD_MIN_LENGTH = 8
export const PASSWORD_MAX_LENGTH = 256

/**
 * zxcvbn-ts's common-password dictionary (49,233 entries, already lower-case, ranked by frequency
 * in breach corpora), built into a Set once when this module loads: each check is one hash lookup.
 * Only zxcvbn-ts's list is used, not its strength estimator (docs/decisions.md, "Accounts and
 * passwords").
 */
export const COMMON_PASSWORDS: ReadonlySet<string> = new Set(dictionary['passwords-common'].map((word) => word.toLowerCase()))

export type PasswordRejectionReason = 'too_short' | 'too_long' | 'common' | 'email' | 'email_local_part' | 'display_name'

export interface PasswordRejection {
  readonly reason: PasswordRejectionReason
  /** For the person choosing the password: says why, never repeats the password. */
  readonly message: string
}

const REJECTIONS: { readonly [R in PasswordRejectionReason]: PasswordRejection } = {
  too_short: { reason: 'too_short', message: `The password must be at least ${PASSWORD_MIN_LENGTH} characters` },
  too_long: { reason: 'too_long', message: `The password must be at most ${PASSWORD_MAX_LENGTH} characters` },
  common: { reason: 'common', message: 'This password is too common' },
  email: { reason: 'email', message: 'The password must not be your email address' },
  email_local_part: { reason: 'email_local_part', message: 'The password must not be the part of your email address before the @' },
  display_name: { reason: 'display_name', message: 'The password must not be your display name' }
}

/** Code points in `s`, counting no further than `limit + 1` (a huge input costs nothing more). */
function codePointLength(s: string, limit: number): number {
  let n = 0
  for (const _ of s) if (++n > limit) break
  return n
}

/**
 * Why `password` may not be the new password of the account with this email and display name,
 * or undefined when it may. Comparisons are case-insensitive; the email is compared trimmed and
 * lower-cased as it is stored, its local part is what comes before the last `@`.
 */
export function checkPasswordPolicy(password: string, email: string, displayName?: string | null): PasswordRejection | undefined {
  const length = codePointLength(password, PASSWORD_MAX_LENGTH)
  if (length < PASSWORD_MIN_LENGTH) return REJECTIONS.too_short
  if (length > PASSWORD_MAX_LENGTH) return REJECTIONS.too_long
  const lowered = password.toLowerCase()
  if (COMMON_PASSWORDS.has(lowered)) return REJECTIONS.common
  const address = email.trim().toLowerCase()
  if (lowered === address) return REJECTIONS.email
  const at = address.lastIndexOf('@')
  if (at > 0 && lowered === address.slice(0, at)) return REJECTIONS.email_local_part
  if (displayName && lowered === displayName.trim().toLowerCase()) return REJECTIONS.display_name
  return undefined
}

/** checkPasswordPolicy as a guard: throws WeakPasswordError (400 `AUTH_WEAK_PASSWORD`) with the reason's message. */
export function assertPasswordAllowed(password: string, email: string, displayName?: string | null): void {
  const rejection = checkPasswordPolicy(password, email, displayName)
  if (rejection) throw new WeakPasswordError(rejection.message)
}
