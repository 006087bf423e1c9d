// Logging: pino, one JSON line per request with its request id, and never a credential.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { createRequire } from 'node:module'
import type { FastifyBaseLogger, FastifyRequest, FastifyServerOptions } from 'fastify'
import type { Bindings, ChildLoggerOptions, DestinationStream, Logger as PinoLogger } from 'pino'
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
  '*.token',
  '*.client_secret',
  '*.client_secret_hash'
]

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** Shorter than any token; longer than the static segments of this API's routes but these: */
const LONGEST_LOGGED_SEGMENT = 19
const LONG_STATIC_SEGMENTS = new Set(['oauth-authorization-server'])

/**
 * The path as logged (docs/security.md, "Internal endpoints and headers"): a client may put a
 * token in the path as well as in the query, matched route or not. Every segment of 20 or more
 * characters that is not a UUID (a session id) is `[redacted]`: JWTs, API keys and other opaque
 * credentials are all longer, the service's own path segments all shorter.
 */
export function redactPath(path: string): string {
  if (path.length <= LONGEST_LOGGED_SEGMENT + 1) return path
  const segments = path.split('/')
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]
    if (segment.length > LONGEST_LOGGED_SEGMENT && !UUID.test(segment) && !LONG_STATIC_SEGMENTS.has(segment)) segments[i] = '[redacted]'
  }
  return segments.join('/')
}

/** The request as logged: no headers, the query string redacted, and long path segments too. */
function serializeRequest(request: FastifyRequest) {
  const [path, query] = request.url.split('?', 2)
  const logged = redactPath(path)
  return {
    method: request.method,
    url: query === undefined ? logged : `${logged}?[redacted]`,
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

type LevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * `request.log` that becomes a pino child only when the request logs a line its level lets
 * through. With the wildcard redact paths above, pino runs every child's bindings through the
 * redactor, which clones them: costly on every request, for a child that at the usual `warn`
 * level almost never writes a line.
 */
class RequestLogger implements FastifyBaseLogger {
  private child_?: FastifyBaseLogger

  constructor(
    private readonly parent: PinoLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions
  ) {}

  private get real(): FastifyBaseLogger {
    if (!this.child_) {
      // No options (Fastify passes `{}`) is pino's cheaper way to make a child.
      const options = Object.keys(this.options).length > 0 ? this.options : undefined
      this.child_ = this.parent.child(this.bindings, options)
    }
    return this.child_
  }

  private write(level: LevelName, args: unknown[]): void {
    if (this.child_ || this.parent.isLevelEnabled(level)) (this.real[level] as (...a: unknown[]) => void)(...args)
  }

  get level(): string {
    return this.child_?.level ?? this.parent.level
  }
  set level(level: string) {
    this.real.level = level
  }

  // Methods on the prototype, as pino's are: nothing but this object is allocated per request.
  fatal(...args: unknown[]): void {
    this.write('fatal', args)
  }
  error(...args: unknown[]): void {
    this.write('error', args)
  }
  warn(...args: unknown[]): void {
    this.write('warn', args)
  }
  info(...args: unknown[]): void {
    this.write('info', args)
  }
  debug(...args: unknown[]): void {
    this.write('debug', args)
  }
  trace(...args: unknown[]): void {
    this.write('trace', args)
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real.child(bindings, options)
  }
}

/** Fastify's `childLoggerFactory`: a request's logger, made on its first line (see RequestLogger). */
export function requestLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  const pino = logger as Partial<PinoLogger>
  // A route with its own log level, or a logger that is not pino: the child is made at once.
  if (options.level !== undefined || typeof pino.isLevelEnabled !== 'function') return logger.child(bindings, options)
  return new RequestLogger(logger as PinoLogger, bindings, options)
}
