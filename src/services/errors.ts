import createError from '@fastify/error'

// Typed errors thrown by services and the auth plugin. The error handler turns them into
// Fastify's error shape { statusCode, error, message, code }, so messages must never carry
// a token, a password or SQL.

/** 401 for a Bearer-protected route; the error handler adds WWW-Authenticate (RFC 6750 §3). */
export const MissingBearerTokenError = createError('AUTH_MISSING_TOKEN', 'Missing bearer token', 401)
export const InvalidAccessTokenError = createError('AUTH_INVALID_TOKEN', 'Invalid or expired access token', 401)

export const InvalidRefreshTokenError = createError('AUTH_INVALID_REFRESH_TOKEN', 'Invalid or expired refresh token', 401)
export const InvalidCredentialsError = createError('AUTH_INVALID_CREDENTIALS', 'Invalid email or password', 401)
export const WrongPasswordError = createError('AUTH_WRONG_PASSWORD', 'Current password is wrong', 401)
export const EmailTakenError = createError('AUTH_EMAIL_TAKEN', 'Email is already registered', 409)
export const ForeignSessionError = createError('AUTH_FORBIDDEN', 'The refresh token belongs to another user', 403)
export const InvalidLogoutRequestError = createError('AUTH_INVALID_REQUEST', '%s', 400)
export const SessionNotFoundError = createError('AUTH_SESSION_NOT_FOUND', 'Session not found', 404)
export const TooManyRequestsError = createError('AUTH_RATE_LIMITED', 'Too many requests; retry after the time in Retry-After', 429)
export const ServiceUnavailableError = createError('AUTH_UNAVAILABLE', 'Service temporarily unavailable', 503)

/**
 * The WWW-Authenticate value of a 401 from a Bearer-protected route (contract: every such 401
 * carries one). `error="invalid_token"` only when the access token itself was bad (RFC 6750
 * §3.1); a 401 about something else (a wrong current password, a bad refresh_token in the body)
 * comes with a valid token, so it gets the bare challenge rather than telling the client to
 * throw that token away.
 */
export function bearerChallenge(error: { code?: string }): string {
  return error.code === 'AUTH_INVALID_TOKEN' ? 'Bearer error="invalid_token"' : 'Bearer'
}

// SQLSTATE classes meaning "the database cannot be reached right now", not "the query is wrong".
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-3])/
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'])
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|PGlite is closed|Client has encountered a connection error|not queryable/i

/** True for errors that mean the database is down or unreachable (answered as 503, not 500). */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE_CODES.has(code))) return true
  return UNAVAILABLE_MESSAGES.test(error.message)
}

export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505'
}

/** RFC 9700 §4.14.2: an old refresh token came back; the session has been deleted. */
export const RefreshTokenReuseError = createError(
  'AUTH_REFRESH_TOKEN_REUSED',
  'Refresh token was already used; the session has been revoked',
  401
)
