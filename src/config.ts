import { envSchema } from 'env-schema'
import { Type, type Static } from '@sinclair/typebox'
import { availableParallelism } from 'node:os'
import type { SigningAlgorithm } from './auth/keys.js'
import type { PasswordHashingLimits } from './services/passwords.js'
import { allowedCpus, hashingCpus } from './services/password-threads.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
/** Where /metrics and /docs are served: the public listener, the internal one, or nowhere. */
const PLACEMENTS = ['public', 'internal', 'off'] as const
export type Placement = (typeof PLACEMENTS)[number]

// The environment as the operator writes it. env-schema validates it (and coerces numbers);
// durations are parsed below so the rest of the code only sees whole seconds.
const EnvSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** The revocation listener's own connection: direct to PostgreSQL when DATABASE_URL is a PgBouncer. */
  DATABASE_LISTEN_URL: Type.Optional(Type.String({ minLength: 1 })),
  PG_PREPARED_STATEMENTS: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' }),
  DATA_DIR: Type.String({ default: './data', minLength: 1 }),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535 }),
  INTERNAL_HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  INTERNAL_PORT: Type.String({ default: '9100', pattern: '^(\\d{1,5}|off)$' }),
  METRICS: Type.Optional(Type.Union(PLACEMENTS.map((p) => Type.Literal(p)))),
  DOCS: Type.Optional(Type.Union(PLACEMENTS.map((p) => Type.Literal(p)))),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)), { default: 'info' }),

  ACCESS_TOKEN_TTL: Type.String({ default: '15m' }),
  REFRESH_TOKEN_TTL: Type.String({ default: '30d' }),
  REFRESH_REUSE_GRACE: Type.Integer({ default: 10, minimum: 0, maximum: 300 }),
  CLOCK_TOLERANCE: Type.Integer({ default: 5, minimum: 0, maximum: 300 }),

  PUBLIC_URL: Type.Optional(Type.String({ minLength: 1 })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.String({ default: 'api', minLength: 1 }),
  JWT_CLIENT_ID: Type.String({ default: 'auth-service', minLength: 1 }),
  JWT_ALGORITHM: Type.Union(
    (['EdDSA', 'ES256', 'HS256'] satisfies SigningAlgorithm[]).map((alg) => Type.Literal(alg)),
    { default: 'EdDSA' }
  ),
  JWT_PRIVATE_KEY: Type.Optional(Type.String({ minLength: 1 })),
  JWT_PRIVATE_KEY_FILE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_VERIFY_KEYS: Type.Optional(Type.String({ minLength: 1 })),
  JWT_VERIFY_KEYS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  REFRESH_CHAIN_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  SERVICE_CLIENTS_FILE: Type.Optional(Type.String({ minLength: 1 })),

  BODY_LIMIT: Type.Integer({ default: 1_048_576, minimum: 1024 }),
  TRUST_PROXY: Type.String({ default: 'false' }),
  RATE_LIMIT: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' }),
  RATE_LIMIT_IP_MAX: Type.Integer({ default: 60, minimum: 1 }),
  RATE_LIMIT_ACCOUNT_MAX: Type.Integer({ default: 10, minimum: 1 }),
  RATE_LIMIT_ACCOUNT_CEILING: Type.Integer({ default: 20, minimum: 1 }),
  RATE_LIMIT_SLOWDOWN_MAX: Type.String({ default: '5s' }),
  RATE_LIMIT_WINDOW: Type.String({ default: '1m' }),
  /** The rate-limit counts in Redis instead of the service's database. */
  REDIS_URL: Type.Optional(Type.String({ minLength: 1 })),

  // Kept after measuring (docs/scaling.md, "Cost curves of one instance"): about 940 bytes of
  // heap per verified token and 190 per session; past 10,000 tokens /verify still costs less
  // than a bare signature check, and a liveness entry only helps a session that comes back
  // within SESSION_CACHE_TTL, so more entries would mostly hold answers that expire unread.
  TOKEN_CACHE_SIZE: Type.Integer({ default: 10_000, minimum: 0 }),
  SESSION_CACHE_SIZE: Type.Integer({ default: 100_000, minimum: 0 }),
  SESSION_CACHE_TTL: Type.Integer({ default: 30, minimum: 0 }),
  SESSION_CLEANUP_INTERVAL: Type.String({ default: '10m' }),
  AUDIT_RETENTION: Type.String({ default: '365d' }),
  SSF_EVENT_RETENTION: Type.String({ default: '1d' }),
  SSF_POLL_TIMEOUT: Type.String({ default: '25s' }),
  SSF_STREAM_IDLE_TTL: Type.String({ default: '1h' }),
  SSF_PUSH_ALLOWED_ORIGINS: Type.String({ default: '' }),
  SSF_MAX_STREAMS_PER_CLIENT: Type.Integer({ default: 1000, minimum: 1 }),
  PG_POOL_SIZE: Type.Integer({ default: 10, minimum: 1 }),
  /** Quiet time after which memory is given back (src/idle-memory.ts); 0 never. */
  MEMORY_RELEASE_IDLE: Type.String({ default: '10s' }),
  /** Default: the cores less one (at least 1); see passwordHashing in loadConfig. */
  PASSWORD_HASH_CONCURRENCY: Type.Optional(Type.Integer({ minimum: 1 })),
  PASSWORD_HASH_QUEUE: Type.Optional(Type.Integer({ minimum: 0 })),
  PASSWORD_HASH_POLICY: Type.Union([Type.Literal('idle'), Type.Literal('normal')], { default: 'idle' }),
  PASSWORD_HASH_NICE: Type.Integer({ default: 19, minimum: 0, maximum: 19 }),
  PASSWORD_HASH_CPUS: Type.Union([Type.Literal('all-but-one'), Type.Literal('all')], { default: 'all-but-one' }),

  /** Password reset and email verification by mail (docs/recovery.md); default: on, in production only with SMTP_URL. */
  RECOVERY: Type.Optional(Type.Union([Type.Literal('on'), Type.Literal('off')])),
  REQUIRE_VERIFIED_EMAIL: Type.Union([Type.Literal('true'), Type.Literal('false')], { default: 'false' }),
  SMTP_URL: Type.Optional(Type.String({ minLength: 1 })),
  MAIL_FROM: Type.String({ default: 'auth-service <no-reply@localhost>', minLength: 3 }),
  PASSWORD_RESET_URL: Type.Optional(Type.String({ minLength: 1 })),
  EMAIL_VERIFICATION_URL: Type.Optional(Type.String({ minLength: 1 })),
  PASSWORD_RESET_TTL: Type.String({ default: '30m' }),
  EMAIL_VERIFICATION_TTL: Type.String({ default: '24h' }),
  MAIL_POLL_INTERVAL: Type.String({ default: '5s' }),
  MAIL_RETRY_BASE: Type.String({ default: '5s' }),
  MAIL_MAX_ATTEMPTS: Type.Integer({ default: 10, minimum: 1, maximum: 100 })
})
type Env = Static<typeof EnvSchema>

export interface Config {
  readonly env: string
  readonly isProduction: boolean
  readonly databaseUrl: string | undefined
  /**
   * Where the LISTEN connection goes (DATABASE_LISTEN_URL, else DATABASE_URL): a pooler in
   * transaction mode cannot carry a LISTEN, so behind PgBouncer this names the server itself.
   */
  readonly databaseListenUrl: string | undefined
  /** Hot-path statements as named prepared statements (off behind PgBouncer in transaction mode before 1.21). */
  readonly preparedStatements: boolean
  readonly dataDir: string
  readonly host: string
  readonly port: number
  /**
   * The internal listener (docs/security.md, "Internal endpoints and headers"): where /metrics
   * and /docs go when they are `internal`. `port` null: INTERNAL_PORT=off; 0 picks a free port.
   */
  readonly internal: { readonly host: string, readonly port: number | null }
  /** GET /metrics: `internal` by default in production, `public` elsewhere. */
  readonly metrics: Placement
  /** GET /docs and /docs/json: `internal` by default in production, `public` elsewhere. */
  readonly docs: Placement
  readonly logLevel: Env['LOG_LEVEL']
  readonly bodyLimit: number
  readonly trustProxy: boolean | number | string
  /**
   * Where clients reach the service (PUBLIC_URL, default `http://HOST:PORT`), no trailing slash:
   * the absolute URLs of the metadata documents are built from it.
   */
  readonly publicUrl: string
  /** PUBLIC_URL was not set (production warns: the default names the listener, not what clients see). */
  readonly publicUrlDefaulted: boolean
  /** SERVICE_CLIENTS_FILE: the machine clients (src/auth/service-clients.ts); undefined: none. */
  readonly serviceClientsFile: string | undefined
  readonly tokens: {
    readonly accessTtl: number
    readonly refreshTtl: number
    readonly reuseGrace: number
    readonly clockTolerance: number
    /** `iss` of every token and metadata document: JWT_ISSUER, else the public URL. */
    readonly issuer: string
    readonly audience: string
    readonly clientId: string
    /** Access tokens whose signature check is remembered (0: verify every time). */
    readonly verifiedCacheSize: number
  }
  readonly keys: {
    readonly algorithm: SigningAlgorithm
    readonly privateKey: string | undefined
    readonly privateKeyFile: string | undefined
    readonly verifyKeys: string | undefined
    readonly verifyKeysFile: string | undefined
    readonly secret: string | undefined
    readonly chainSecret: string | undefined
  }
  readonly rateLimit: {
    readonly enabled: boolean
    /** Requests per window from one IP, per route group (/login, /register, /refresh, /password). */
    readonly ipMax: number
    /** Per window: requests per email or user, failed logins per (email, IP), rotations per session, failed token checks per IP. */
    readonly accountMax: number
    /** Failed logins per window for one email, from all addresses, before its logins are slowed (never refused). */
    readonly accountCeiling: number
    /** The longest a login is slowed, in seconds. */
    readonly slowdownMax: number
    readonly window: number
    /** REDIS_URL: the counts in Redis; unset: in the service's database, shared by every instance. */
    readonly redisUrl: string | undefined
  }
  readonly sessions: {
    readonly cacheSize: number
    readonly cacheTtl: number
    /** Seconds between clean-ups of expired sessions; 0 turns the clean-up off. */
    readonly cleanupInterval: number
  }
  /** Seconds audit events are kept; 0 keeps them forever. */
  readonly auditRetention: number
  /**
   * Seconds Shared Signals events are kept (SSF_EVENT_RETENTION): at least as long as the access
   * tokens of a revoked session may live (ACCESS_TOKEN_TTL + CLOCK_TOLERANCE), so a stream
   * created late still learns of every revocation that matters (docs/ssf.md).
   */
  readonly ssfEventRetention: number
  /** The Shared Signals transmitter's streams (docs/ssf.md). */
  readonly ssf: {
    /** Seconds a long poll waits for events before answering empty (SSF_POLL_TIMEOUT). */
    readonly pollTimeout: number
    /** Seconds a poll stream may go unpolled before housekeeping deletes it (SSF_STREAM_IDLE_TTL). */
    readonly streamIdleTtl: number
    /** The only origins push streams may deliver to (SSF_PUSH_ALLOWED_ORIGINS); empty: no push. */
    readonly pushAllowedOrigins: readonly string[]
    readonly maxStreamsPerClient: number
  }
  readonly pgPoolSize: number
  /** Seconds without a request after which memory is given back to the OS (src/idle-memory.ts); 0: never. */
  readonly memoryReleaseIdle: number
  /** argon2id computations at once and waiting (services/passwords.ts, PasswordHasher). */
  readonly passwordHashing: PasswordHashingLimits
  /** Password reset and email verification by mail (docs/recovery.md). */
  readonly recovery: RecoverySettings
}

export interface RecoverySettings {
  /** RECOVERY: the four recovery endpoints and the mail sender exist. */
  readonly enabled: boolean
  /** REQUIRE_VERIFIED_EMAIL: login of an unverified account answers 403 AUTH_EMAIL_NOT_VERIFIED. */
  readonly requireVerifiedEmail: boolean
  /** SMTP_URL (nodemailer's smtp:// or smtps:// URL); undefined: mails are written to the log (not in production). */
  readonly smtpUrl: string | undefined
  readonly mailFrom: string
  /** Link templates with `{token}` (PASSWORD_RESET_URL, EMAIL_VERIFICATION_URL). */
  readonly passwordResetUrl: string
  readonly emailVerificationUrl: string
  /** Seconds a token is valid. */
  readonly passwordResetTtl: number
  readonly emailVerificationTtl: number
  /** Seconds between the sender's looks at the outbox (a request also wakes it at once). */
  readonly pollInterval: number
  /** Seconds before the first retry of a failed send; doubled per attempt, at most 15 minutes. */
  readonly retryBase: number
  /** Attempts after which a mail is given up (state `failed`, logged at error and counted). */
  readonly maxAttempts: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 }

/** Parses `900`, `90s`, `15m`, `12h` or `30d` into whole seconds. */
export function parseDuration(name: string, value: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(value.trim())
  if (!match) {
    throw new ConfigError(`${name} must be whole seconds or a duration like 15m, 12h, 30d (got "${value}")`)
  }
  return Number(match[1]) * UNIT_SECONDS[match[2] || 's']
}

function parsePositiveDuration(name: string, value: string): number {
  const seconds = parseDuration(name, value)
  if (seconds < 1) throw new ConfigError(`${name} must be at least one second`)
  return seconds
}

/**
 * PUBLIC_URL as the issuer and the base of every absolute URL (RFC 8414 §2: https or http, no
 * query, no fragment), without a trailing slash. The default names the listener itself.
 */
function parsePublicUrl(value: string | undefined, host: string, port: number): string {
  if (value === undefined) return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(`PUBLIC_URL must be an absolute http or https URL (got "${value}")`)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash || value.includes('?') || value.includes('#') || url.username || url.password) {
    throw new ConfigError(`PUBLIC_URL must be an http or https URL without query, fragment or credentials (got "${value}")`)
  }
  return url.href.replace(/\/+$/, '')
}

const MAX_POLL_TIMEOUT = 300

/**
 * SSF_PUSH_ALLOWED_ORIGINS: comma-separated origins (scheme, host, port; nothing else), as
 * URL.origin writes them. In production only https ones: a SET is not for the network to read.
 */
function parseAllowedOrigins(value: string, isProduction: boolean): string[] {
  const origins: string[] = []
  for (const entry of value.split(',').map((item) => item.trim()).filter((item) => item !== '')) {
    let url: URL
    try {
      url = new URL(entry)
    } catch {
      throw new ConfigError(`SSF_PUSH_ALLOWED_ORIGINS: "${entry}" is not an origin like https://receiver.example.com`)
    }
    const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password && !/[?#]/.test(entry)
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || !bare) {
      throw new ConfigError(`SSF_PUSH_ALLOWED_ORIGINS: "${entry}" must be an http or https origin without path, query or credentials`)
    }
    if (isProduction && url.protocol !== 'https:') throw new ConfigError(`SSF_PUSH_ALLOWED_ORIGINS: "${entry}" must be https in production`)
    origins.push(url.origin)
  }
  return origins
}

/** PASSWORD_HASH_CONCURRENCY's default: the cores less one, leaving one to the event loop (at least 1). */
export function defaultPasswordHashConcurrency(): number {
  return Math.max(1, availableParallelism() - 1)
}

/**
 * Password hashing leaves one core to the event loop (at least one computation at once) and lets
 * eight per slot wait (argon2id takes 15-30 ms: at most about 150-250 ms of waiting), past which
 * a login is better answered 503 at once than stretched (docs/decisions.md, "Bounded password
 * hashing"); its threads yield the CPU as PASSWORD_HASH_POLICY and PASSWORD_HASH_NICE say, on the
 * CPUs PASSWORD_HASH_CPUS leaves them.
 */
function passwordHashingLimits(env: Env): PasswordHashingLimits {
  const slots = env.PASSWORD_HASH_CONCURRENCY ?? defaultPasswordHashConcurrency()
  const cpus = hashingCpus(env.PASSWORD_HASH_CPUS, slots, allowedCpus())
  return {
    concurrency: slots,
    queue: env.PASSWORD_HASH_QUEUE ?? 8 * slots,
    priority: { policy: env.PASSWORD_HASH_POLICY, nice: env.PASSWORD_HASH_NICE, ...(cpus ? { cpus } : {}) }
  }
}

/** A link template: an absolute http(s) URL with `{token}` in it. */
function parseLinkTemplate(name: string, value: string): string {
  if (!value.includes('{token}')) throw new ConfigError(`${name} must contain {token} (got "${value}")`)
  let url: URL
  try {
    url = new URL(value.replaceAll('{token}', 'x'))
  } catch {
    throw new ConfigError(`${name} must be an absolute http or https URL with {token} in it (got "${value}")`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${name} must be an http or https URL (got "${value}")`)
  return value
}

function recoverySettings(env: Env, isProduction: boolean): RecoverySettings {
  // In production recovery needs a mail server: on by default only when SMTP_URL is set.
  const enabled = (env.RECOVERY ?? (isProduction && !env.SMTP_URL ? 'off' : 'on')) === 'on'
  const requireVerifiedEmail = env.REQUIRE_VERIFIED_EMAIL === 'true'
  if (requireVerifiedEmail && !enabled) throw new ConfigError('REQUIRE_VERIFIED_EMAIL=true needs RECOVERY=on: nobody could verify an address')
  if (enabled && isProduction) {
    if (!env.SMTP_URL) throw new ConfigError('RECOVERY=on in production needs SMTP_URL (or set RECOVERY=off)')
    if (!env.PASSWORD_RESET_URL || !env.EMAIL_VERIFICATION_URL) {
      throw new ConfigError('RECOVERY=on in production needs PASSWORD_RESET_URL and EMAIL_VERIFICATION_URL (the front end\'s pages, with {token})')
    }
  }
  if (env.SMTP_URL && !/^smtps?:\/\//.test(env.SMTP_URL)) throw new ConfigError('SMTP_URL must be an smtp:// or smtps:// URL')
  return Object.freeze({
    enabled,
    requireVerifiedEmail,
    smtpUrl: env.SMTP_URL,
    mailFrom: env.MAIL_FROM,
    passwordResetUrl: parseLinkTemplate('PASSWORD_RESET_URL', env.PASSWORD_RESET_URL ?? 'http://localhost:8080/reset-password#token={token}'),
    emailVerificationUrl: parseLinkTemplate('EMAIL_VERIFICATION_URL', env.EMAIL_VERIFICATION_URL ?? 'http://localhost:8080/verify-email#token={token}'),
    passwordResetTtl: parsePositiveDuration('PASSWORD_RESET_TTL', env.PASSWORD_RESET_TTL),
    emailVerificationTtl: parsePositiveDuration('EMAIL_VERIFICATION_TTL', env.EMAIL_VERIFICATION_TTL),
    pollInterval: parsePositiveDuration('MAIL_POLL_INTERVAL', env.MAIL_POLL_INTERVAL),
    retryBase: parsePositiveDuration('MAIL_RETRY_BASE', env.MAIL_RETRY_BASE),
    maxAttempts: env.MAIL_MAX_ATTEMPTS
  })
}

function parseTrustProxy(value: string): boolean | number | string {
  if (value === 'true') return true
  if (value === 'false' || value === '') return false
  if (/^\d+$/.test(value)) return Number(value)
  return value // a comma-separated list of addresses or CIDRs, as Fastify's trustProxy accepts
}

/**
 * Reads and validates the environment once at start-up. A bad value throws a ConfigError whose
 * message names the variable; src/server.ts prints it as one line and exits.
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  let env: Env
  try {
    env = envSchema<Env>({ schema: EnvSchema, data: source, dotenv: false })
  } catch (err) {
    throw new ConfigError((err as Error).message.replace(/env\//g, ''))
  }

  const accessTtl = parsePositiveDuration('ACCESS_TOKEN_TTL', env.ACCESS_TOKEN_TTL)
  const refreshTtl = parsePositiveDuration('REFRESH_TOKEN_TTL', env.REFRESH_TOKEN_TTL)
  if (refreshTtl < accessTtl) {
    throw new ConfigError('REFRESH_TOKEN_TTL must not be shorter than ACCESS_TOKEN_TTL')
  }

  const ssfEventRetention = parsePositiveDuration('SSF_EVENT_RETENTION', env.SSF_EVENT_RETENTION)
  if (ssfEventRetention < accessTtl + env.CLOCK_TOLERANCE) {
    throw new ConfigError('SSF_EVENT_RETENTION must be at least ACCESS_TOKEN_TTL + CLOCK_TOLERANCE: a revoked session\'s access tokens live that long')
  }

  const isProduction = env.NODE_ENV === 'production'
  const pollTimeout = parsePositiveDuration('SSF_POLL_TIMEOUT', env.SSF_POLL_TIMEOUT)
  if (pollTimeout > MAX_POLL_TIMEOUT) throw new ConfigError(`SSF_POLL_TIMEOUT must be at most ${MAX_POLL_TIMEOUT}s`)
  const internalPort = env.INTERNAL_PORT === 'off' ? null : Number(env.INTERNAL_PORT)
  if (internalPort !== null && internalPort > 65535) throw new ConfigError(`INTERNAL_PORT must be 0 to 65535 or off (got "${env.INTERNAL_PORT}")`)
  const metrics = env.METRICS ?? (isProduction ? 'internal' : 'public')
  const docs = env.DOCS ?? (isProduction ? 'internal' : 'public')
  if (internalPort === null) {
    if (metrics === 'internal') throw new ConfigError('METRICS=internal needs the internal listener: set INTERNAL_PORT, or METRICS=public or off')
    if (docs === 'internal') throw new ConfigError('DOCS=internal needs the internal listener: set INTERNAL_PORT, or DOCS=public or off')
  }
  if (internalPort !== null && internalPort !== 0 && internalPort === env.PORT && (metrics === 'internal' || docs === 'internal')) {
    throw new ConfigError('INTERNAL_PORT must differ from PORT')
  }

  const publicUrl = parsePublicUrl(env.PUBLIC_URL, env.HOST, env.PORT)

  return Object.freeze({
    env: env.NODE_ENV,
    isProduction,
    databaseUrl: env.DATABASE_URL,
    databaseListenUrl: env.DATABASE_URL ? env.DATABASE_LISTEN_URL ?? env.DATABASE_URL : undefined,
    preparedStatements: env.PG_PREPARED_STATEMENTS === 'on',
    dataDir: env.DATA_DIR,
    host: env.HOST,
    port: env.PORT,
    internal: Object.freeze({ host: env.INTERNAL_HOST, port: internalPort }),
    metrics,
    docs,
    logLevel: env.LOG_LEVEL,
    bodyLimit: env.BODY_LIMIT,
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    publicUrl,
    publicUrlDefaulted: env.PUBLIC_URL === undefined,
    serviceClientsFile: env.SERVICE_CLIENTS_FILE,
    tokens: Object.freeze({
      accessTtl,
      refreshTtl,
      reuseGrace: env.REFRESH_REUSE_GRACE,
      clockTolerance: env.CLOCK_TOLERANCE,
      issuer: env.JWT_ISSUER ?? publicUrl,
      audience: env.JWT_AUDIENCE,
      clientId: env.JWT_CLIENT_ID,
      verifiedCacheSize: env.TOKEN_CACHE_SIZE
    }),
    keys: Object.freeze({
      algorithm: env.JWT_ALGORITHM,
      privateKey: env.JWT_PRIVATE_KEY,
      privateKeyFile: env.JWT_PRIVATE_KEY_FILE,
      verifyKeys: env.JWT_VERIFY_KEYS,
      verifyKeysFile: env.JWT_VERIFY_KEYS_FILE,
      secret: env.JWT_SECRET,
      chainSecret: env.REFRESH_CHAIN_SECRET
    }),
    rateLimit: Object.freeze({
      enabled: env.RATE_LIMIT === 'on',
      ipMax: env.RATE_LIMIT_IP_MAX,
      accountMax: env.RATE_LIMIT_ACCOUNT_MAX,
      accountCeiling: env.RATE_LIMIT_ACCOUNT_CEILING,
      slowdownMax: parsePositiveDuration('RATE_LIMIT_SLOWDOWN_MAX', env.RATE_LIMIT_SLOWDOWN_MAX),
      window: parsePositiveDuration('RATE_LIMIT_WINDOW', env.RATE_LIMIT_WINDOW),
      redisUrl: env.REDIS_URL
    }),
    sessions: Object.freeze({
      cacheSize: env.SESSION_CACHE_SIZE,
      cacheTtl: env.SESSION_CACHE_TTL,
      cleanupInterval: parseDuration('SESSION_CLEANUP_INTERVAL', env.SESSION_CLEANUP_INTERVAL)
    }),
    auditRetention: parseDuration('AUDIT_RETENTION', env.AUDIT_RETENTION),
    ssfEventRetention,
    ssf: Object.freeze({
      pollTimeout,
      streamIdleTtl: parsePositiveDuration('SSF_STREAM_IDLE_TTL', env.SSF_STREAM_IDLE_TTL),
      pushAllowedOrigins: Object.freeze(parseAllowedOrigins(env.SSF_PUSH_ALLOWED_ORIGINS, isProduction)),
      maxStreamsPerClient: env.SSF_MAX_STREAMS_PER_CLIENT
    }),
    pgPoolSize: env.PG_POOL_SIZE,
    memoryReleaseIdle: parseDuration('MEMORY_RELEASE_IDLE', env.MEMORY_RELEASE_IDLE),
    passwordHashing: Object.freeze(passwordHashingLimits(env)),
    recovery: recoverySettings(env, isProduction)
  })
}
