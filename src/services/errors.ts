// What the services refuse, as typed errors with a stable `code`. Which HTTP status each code
// answers with is the HTTP layer's business (plugins/errors.ts); messages must never carry a
// token, a password or SQL.

const MESSAGES = {
  AUTH_INVALID_TOKEN: 'Invalid or expired access token',
  AUTH_INVALID_REFRESH_TOKEN: 'Invalid or expired refresh token',
  AUTH_REFRESH_TOKEN_REUSED: 'Refresh token was already used; the session has been revoked',
  AUTH_INVALID_CREDENTIALS: 'Invalid email or password',
  AUTH_WRONG_PASSWORD: 'Current password is wrong',
  AUTH_EMAIL_TAKEN: 'Email is already registered',
  AUTH_FORBIDDEN: 'The refresh token belongs to another user',
  AUTH_INVALID_REQUEST: 'Invalid request',
  AUTH_SESSION_NOT_FOUND: 'Session not found',
  AUTH_WEAK_PASSWORD: 'The password does not meet the password policy',
  AUTH_USER_NOT_FOUND: 'User not found',
  AUTH_BUSY: 'Too many password checks in progress',
  AUTH_INVALID_RECOVERY_TOKEN: 'Invalid or expired token',
  AUTH_EMAIL_ALREADY_VERIFIED: 'The email address is already verified',
  AUTH_EMAIL_NOT_VERIFIED: 'The email address is not verified'
} as const

export type ServiceErrorCode = keyof typeof MESSAGES

export class ServiceError extends Error {
  override name = 'ServiceError'
  constructor(readonly code: ServiceErrorCode, message: string = MESSAGES[code], options?: ErrorOptions) {
    super(message, options)
  }
}

/** A ServiceError class of one code, thrown as `new XxxError()` (or with a more precise message). */
function serviceError(code: ServiceErrorCode) {
  return class extends ServiceError {
    constructor(message?: string, options?: ErrorOptions) {
      super(code, message ?? MESSAGES[code], options)
    }
  }
}

/** The session behind an access token is gone (the caller's token is revoked). */
export const SessionEndedError = serviceError('AUTH_INVALID_TOKEN')
export const InvalidRefreshTokenError = serviceError('AUTH_INVALID_REFRESH_TOKEN')
/** RFC 9700 §4.14.2: an old refresh token came back; the session has been deleted. */
export const RefreshTokenReuseError = serviceError('AUTH_REFRESH_TOKEN_REUSED')
export const InvalidCredentialsError = serviceError('AUTH_INVALID_CREDENTIALS')
export const WrongPasswordError = serviceError('AUTH_WRONG_PASSWORD')
export const EmailTakenError = serviceError('AUTH_EMAIL_TAKEN')
export const ForeignSessionError = serviceError('AUTH_FORBIDDEN')
export const InvalidLogoutRequestError = serviceError('AUTH_INVALID_REQUEST')
export const SessionNotFoundError = serviceError('AUTH_SESSION_NOT_FOUND')
/** A new password the policy refuses (services/password-policy.ts); the message says why. */
export const WeakPasswordError = serviceError('AUTH_WEAK_PASSWORD')
/** An admin endpoint named a user that does not exist. */
export const UserNotFoundError = serviceError('AUTH_USER_NOT_FOUND')
/** Password hashing is at its bound (services/passwords.ts, PasswordHasher): try again shortly. */
export const PasswordHashingBusyError = serviceError('AUTH_BUSY')
/**
 * The contract's `invalid_token` of POST /password/reset and /email/verify: a token that is
 * unknown, used, expired or superseded, with one answer for all four (a guesser learns nothing).
 */
export const InvalidRecoveryTokenError = serviceError('AUTH_INVALID_RECOVERY_TOKEN')
/** POST /email/verification for an address that is already verified. */
export const EmailAlreadyVerifiedError = serviceError('AUTH_EMAIL_ALREADY_VERIFIED')
/** REQUIRE_VERIFIED_EMAIL: the right password of an account whose address is not verified. */
export const EmailNotVerifiedError = serviceError('AUTH_EMAIL_NOT_VERIFIED')
