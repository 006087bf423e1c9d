import createError from '@fastify/error'

// The errors the HTTP layer itself raises (Bearer checks, rate limits, outages), with their status.

/** 401 for a Bearer-protected route; the error handler adds WWW-Authenticate (RFC 6750 §3). */
export const MissingBearerTokenError = createError('AUTH_MISSING_TOKEN', 'Missing bearer token', 401)
export const InvalidAccessTokenError = createError('AUTH_INVALID_TOKEN', 'Invalid or expired access token', 401)
export const TooManyRequestsError = createError('AUTH_RATE_LIMITED', 'Too many requests; retry after the time in Retry-After', 429)
export const ServiceUnavailableError = createError('AUTH_UNAVAILABLE', 'Service temporarily unavailable', 503)
