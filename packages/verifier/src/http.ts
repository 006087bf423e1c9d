// What an HTTP resource server answers for each outcome (RFC 6750 §3), for any framework.
import { VerifierError } from './errors.js'

/** A Bearer token from an Authorization header; undefined when there is none (or another scheme). */
export function bearerToken(authorization: string | string[] | undefined): string | undefined {
  const header = Array.isArray(authorization) ? authorization[0] : authorization
  if (typeof header !== 'string') return undefined
  const match = /^Bearer +([^\s]+) *$/i.exec(header)
  return match ? match[1] : undefined
}

export interface Challenge {
  statusCode: 401 | 503 | 500
  headers: Record<string, string>
  body: { statusCode: number, error: string, message: string }
}

const quote = (text: string) => text.replace(/["\\]/g, '').replace(/[^\x20-\x7e]/g, '')

/**
 * The answer to a request without a token (`error` undefined), or to one whose token verify()
 * refused: 401 with `WWW-Authenticate: Bearer` (plus `error="invalid_token"` for a bad or revoked
 * token), 503 with `Retry-After` when revocations cannot be checked.
 */
export function challengeFor(error: unknown, retryAfterSec = 5): Challenge {
  if (error === undefined) {
    return {
      statusCode: 401,
      headers: { 'www-authenticate': 'Bearer' },
      body: { statusCode: 401, error: 'Unauthorized', message: 'Missing bearer token' }
    }
  }
  const code = error instanceof VerifierError ? error.code : 'unavailable'
  if (code === 'invalid_token' || code === 'token_revoked') {
    const description = code === 'token_revoked' ? 'The session has ended' : 'The access token is invalid'
    return {
      statusCode: 401,
      headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${quote(description)}"` },
      body: { statusCode: 401, error: 'Unauthorized', message: description }
    }
  }
  if (code === 'misconfigured') {
    return { statusCode: 500, headers: {}, body: { statusCode: 500, error: 'Internal Server Error', message: 'Token verification is not configured' } }
  }
  return {
    statusCode: 503,
    headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSec))) },
    body: { statusCode: 503, error: 'Service Unavailable', message: 'Tokens cannot be checked right now' }
  }
}
