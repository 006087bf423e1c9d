import createError from '@fastify/error'

// The errors the HTTP layer itself raises (Bearer checks, rate limits, outages), with their status.

/** 401 for a Bearer-protected route; the error handler adds WWW-Authenticate (RFC 6750 §3). */
export const MissingBearerTokenError = createError('AUTH_MISSING_TOKEN', 'Missing bearer token', 401)
export const InvalidAccessTokenError = createError('AUTH_INVALID_TOKEN', 'Invalid or expired access token', 401)
export const TooManyRequestsError = createError('AUTH_RATE_LIMITED', 'Too many requests; retry after the time in Retry-After', 429)
export const ServiceUnavailableError = createError('AUTH_UNAVAILABLE', 'Service temporarily unavailable', 503)
/** The rate-limit store (Redis) did not answer: the limited request is refused, never let through uncounted. */
export const RateLimitStoreUnavailableError = createError('AUTH_RATE_LIMIT_STORE_UNAVAILABLE', 'Service temporarily unavailable', 503)

/** RFC 6750 §3.1: a valid machine token without the scope the route needs (403). */
export class InsufficientScopeError extends createError('AUTH_INSUFFICIENT_SCOPE', 'The token lacks the scope this endpoint requires', 403) {
  constructor(readonly scope: string) {
    super()
  }
}

export function insufficientScopeChallenge(scope: string): string {
  return `Bearer error="insufficient_scope", scope="${scope}"`
}

/** An error of the OAuth endpoints (/token, /introspect), answered as RFC 6749 §5.2 says. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'temporarily_unavailable'
  | 'server_error'

export class OAuthError extends Error {
  override name = 'OAuthError'
  constructor(
    readonly statusCode: number,
    readonly oauthCode: OAuthErrorCode,
    readonly description?: string,
    /** The WWW-Authenticate value a 401 (or a 403 for a scope) carries. */
    readonly challenge?: string
  ) {
    super(description ?? oauthCode)
  }
}
