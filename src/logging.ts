// Logging: pino, one JSON line per request with its request id, and never a credential.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { createRequire } from 'node:module'
import type { FastifyRequest, FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'

// Headers that carry credentials and every body field that may, wherever they are logged.
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.current_password',
  '*.new_password',
  '*.refresh_token',
  '*.access_token',
  '*.token'
]

/** The request as logged: no headers, and the path without its query string (tokens end up there). */
function serializeRequest(request: FastifyRequest) {
  const [path, query] = request.url.split('?', 2)
  return {
    method: request.method,
    url: query === undefined ? path : `${path}?[redacted]`,
    remoteAddress: request.ip
  }
}

function prettyPrintingAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty') // a dev dependency
    return true
  } catch {
    return false
  }
}

export function loggerOptions(config: Config, stream?: DestinationStream): FastifyServerOptions['logger'] {
  const pretty = !stream && process.stdout.isTTY && !config.isProduction && prettyPrintingAvailable()
  return {
    level: config.logLevel,
    redact: { paths: REDACT, censor: '[redacted]' },
    serializers: { req: serializeRequest as never },
    ...(stream ? { stream } : {}),
    ...(pretty ? { transport: { target: 'pino-pretty' } } : {})
  }
}

const REQUEST_ID = /^[\w.:@/-]{1,128}$/

/**
 * The request id: the caller's `x-request-id` (a gateway's trace id) when it is a sane value,
 * else a new UUID. It is on every log line of the request and echoed in the response.
 */
export function requestIdOf(request: IncomingMessage): string {
  const incoming = request.headers['x-request-id']
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
}
