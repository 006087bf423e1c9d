// Error and not-found handlers: every error leaves in Fastify's shape { statusCode, error,
// message, code }, 5xx messages are masked, and Bearer 401s carry WWW-Authenticate.
// https://fastify.dev/docs/latest/Reference/Errors/
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { isDatabaseUnavailable } from '../db/errors.js'
import { setSecurityHeaders } from './security-headers.js'
import { PasswordHashingBusyError, ServiceError, type ServiceErrorCode } from '../services/errors.js'
import { InsufficientScopeError, insufficientScopeChallenge } from './http-errors.js'

/** The status each refusal of the services answers with. */
const SERVICE_ERROR_STATUS: Record<ServiceErrorCode, number> = {
  AUTH_INVALID_TOKEN: 401,
  AUTH_INVALID_REFRESH_TOKEN: 401,
  AUTH_REFRESH_TOKEN_REUSED: 401,
  AUTH_INVALID_CREDENTIALS: 401,
  AUTH_WRONG_PASSWORD: 401,
  AUTH_EMAIL_TAKEN: 409,
  AUTH_FORBIDDEN: 403,
  AUTH_INVALID_REQUEST: 400,
  AUTH_SESSION_NOT_FOUND: 404,
  AUTH_WEAK_PASSWORD: 400,
  AUTH_USER_NOT_FOUND: 404,
  AUTH_BUSY: 503,
  AUTH_INVALID_RECOVERY_TOKEN: 400,
  AUTH_EMAIL_ALREADY_VERIFIED: 409,
  AUTH_EMAIL_NOT_VERIFIED: 403
}

/**
 * The WWW-Authenticate value of a 401 from a Bearer-protected route (docs/api.md, "Conventions":
 * every such 401 carries one). `error="invalid_token"` only when the access token itself was bad
 * (RFC 6750 §3.1); a 401 about something else (a wrong current password, a bad refresh_token in
 * the body) comes with a valid token, so it gets the bare challenge rather than telling the
 * client to throw that token away.
 */
export function bearerChallenge(error: { code?: string }): string {
  return error.code === 'AUTH_INVALID_TOKEN' ? 'Bearer error="invalid_token"' : 'Bearer'
}

// Node's JSON.parse messages quote the start of the body, which may hold a password.
const SAFE_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'Body is not valid JSON'
}

/**
 * The client closed the connection before its request body arrived: Node destroys the request
 * stream with this very error (ECONNRESET "aborted"). The client's doing, not the database's.
 */
function clientAborted(error: FastifyError, request: FastifyRequest): boolean {
  return request.raw.errored === error
}

function statusOf(error: FastifyError): number {
  if (isDatabaseUnavailable(error)) return 503
  if (error instanceof ServiceError) return SERVICE_ERROR_STATUS[error.code]
  const status = error.statusCode ?? 500
  return status >= 400 && status <= 599 ? status : 500
}

function messageOf(error: FastifyError, statusCode: number): string {
  if (statusCode === 503) return 'Service temporarily unavailable'
  if (statusCode >= 500) return 'Internal Server Error'
  if (error instanceof SyntaxError) return SAFE_MESSAGES.FST_ERR_CTP_INVALID_JSON_BODY
  return SAFE_MESSAGES[error.code] ?? error.message
}

/**
 * Fastify's `frameworkErrors`: errors the router raises before any route or hook runs (a bad
 * URL encoding, an over-long path parameter). Same shape as every other error, and a fixed
 * message: the default one quotes the raw URL, which may hold a token.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const statusCode = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
  request.log.info({ code: error.code, statusCode }, 'request rejected by the router')
  setSecurityHeaders(reply) // no onRequest hook has run
  void reply
    .code(statusCode)
    .header('cache-control', 'no-store')
    .header('x-request-id', request.id)
    .send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Bad Request', message: 'Malformed request URL', code: error.code })
}

/** Routes documented with a Bearer security scheme take a Bearer token; so does anything authenticate threw. */
function takesBearerToken(request: FastifyRequest, error: FastifyError): boolean {
  if (error.code === 'AUTH_MISSING_TOKEN' || error.code === 'AUTH_INVALID_TOKEN') return true
  const security = request.routeOptions.schema?.security as Array<Record<string, unknown>> | undefined
  return security?.some((scheme) => 'bearerAuth' in scheme || 'clientToken' in scheme) ?? false
}

/** What an error answers: its status and the message safe to send. */
export interface ErrorVerdict {
  readonly statusCode: number
  readonly message: string
}

/**
 * Requests refused at the password-hashing bound since the last warn line about it, and when that
 * was: per app, keyed by its metrics object, which all its plugin contexts share.
 */
const shedLogs = new WeakMap<object, { refused: number, loggedAt: number }>()

/**
 * The status and safe message of `error`, logged and counted once: what every error handler of
 * the service (this one, and the OAuth endpoints' in routes/oauth.ts) starts from.
 */
export function triageError(app: FastifyInstance, error: FastifyError, request: FastifyRequest, reply: FastifyReply): ErrorVerdict {
  const aborted = clientAborted(error, request)
  const statusCode = aborted ? 400 : statusOf(error)
  if (aborted) {
    // Nobody is left to answer: one info line, never an outage (docs/operations.md, "Database outages").
    request.log.info({ code: error.code }, 'client aborted the request')
  } else if (error instanceof PasswordHashingBusyError) {
    // Load shedding, not a fault: the client retries after a second (docs/operations.md). A
    // flood is shed thousands of times a second: one warn line a second at most, with the count.
    app.authMetrics.passwordHashingBusy.inc()
    let shed = shedLogs.get(app.authMetrics)
    if (!shed) shedLogs.set(app.authMetrics, (shed = { refused: 0, loggedAt: 0 }))
    shed.refused++
    const nowMs = Date.now()
    if (nowMs - shed.loggedAt >= 1000) {
      request.log.warn({ code: error.code, refused: shed.refused }, 'password hashing at its bound; answered 503 (refused: how many since the last such line)')
      shed.refused = 0
      shed.loggedAt = nowMs
    }
  } else if (error.code === 'AUTH_RATE_LIMIT_STORE_UNAVAILABLE') {
    // Logged where it failed (plugins/rate-limits.ts), with the store's own error.
  } else if (statusCode === 503) {
    app.authMetrics.databaseUnavailable.inc()
    request.log.error({ err: error }, 'database unavailable')
  } else if (statusCode >= 500) {
    request.log.error({ err: error }, 'request failed')
  } else {
    request.log.info({ code: error.code, statusCode }, error.message)
  }
  if (statusCode === 503) reply.header('retry-after', error instanceof PasswordHashingBusyError ? '1' : '5')
  return { statusCode, message: messageOf(error, statusCode) }
}

export default fp(
  async function errorsPlugin(app) {
    app.setErrorHandler(function errorHandler(error: FastifyError, request, reply) {
      const { statusCode, message } = triageError(app, error, request, reply)
      if (statusCode === 401 && takesBearerToken(request, error)) reply.header('www-authenticate', bearerChallenge(error))
      if (error instanceof InsufficientScopeError) reply.header('www-authenticate', insufficientScopeChallenge(error.scope))
      return reply.code(statusCode).send({
        statusCode,
        error: STATUS_CODES[statusCode] ?? 'Error',
        message,
        ...(error.code && statusCode < 500 ? { code: error.code } : {})
      })
    })

    // A fixed message: the path may hold a token (docs/security.md, "Internal endpoints and
    // headers"), and like every error a 404 must not be cached.
    app.setNotFoundHandler(function notFound(_request, reply) {
      return reply.code(404).header('cache-control', 'no-store').send({ statusCode: 404, error: 'Not Found', message: 'Route not found' })
    })
  },
  { name: 'errors' }
)
