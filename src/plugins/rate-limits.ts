// Rate limits and lockout (docs/security.md, "Rate limits and lockout"). The decorators return
// the hooks a route puts in front of its handler; over a limit: 429 with Retry-After.
//
//   app.limitRequests(group, accountKey?)   every request, per IP and per account (/register, /password)
//   app.limitLogin(accountOf)               /login: failures per (account, IP) refuse, failures per
//                                           account slow every attempt (never refuse); successes never count
//   app.limitRefresh(claimsOf)              /refresh: per IP, failed token checks per IP, rotations
//                                           per session (a grace-window replay is not a rotation)
//   app.limitAuthentication(group, check)   a credential check (/revoke's token): per IP, and failed
//                                           checks per IP, refused before the credential is even checked
//   app.limitFailedAuthentication(group, check)
//                                           machine clients' credentials (/token, /introspect): failed
//                                           checks per IP only, since a service calls many times a minute
//
// Every count is an @fastify/rate-limit limiter, so the plugin's `store` option decides where the
// counts live (default: the service's memory, bounded LRU, windows on the injected clock). The
// store must implement `read` (peek without counting) as well as `incr`, like the plugin's own
// local and Redis stores. Keys use clientIp (src/client-info.ts): request.ip honours
// TRUST_PROXY, a forwarded value that is not an address falls back to the socket's, and an IPv6
// client counts as its /64, like @fastify/rate-limit's default key.
import { createHash } from 'node:crypto'
import { isIPv6 } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyReply, FastifyRequest, onErrorAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import type { RefreshTokenClaims } from '../auth/claims.js'
import { clientIp } from '../client-info.js'
import { Redis } from 'ioredis'
import { isDatabaseUnavailable } from '../db/errors.js'
import { RateLimitStoreUnavailableError, TooManyRequestsError } from './http-errors.js'

export interface RateLimitsOptions {
  enabled: boolean
  /** Requests per window from one IP address, per route group. */
  ipMax: number
  /**
   * Per window: requests for one account at /register and /password; failed logins for one
   * (account, IP); rotations of one session; failed token checks from one IP.
   */
  accountMax: number
  /** Failed logins per window for one account, from all addresses together, before its logins are slowed. */
  accountCeiling: number
  /** The longest slowdown of a login, in seconds. */
  slowdownMaxSeconds: number
  /** Window length in seconds. */
  windowSeconds: number
  /** The clock of the in-memory store's windows (default: the system clock). */
  now?: () => Date
  /** Where the counts live: an @fastify/rate-limit store class with `incr`, `read` and `child`. */
  store?: new (options: object) => RateLimitStore
  /** Or in Redis (REDIS_URL), through @fastify/rate-limit's own Redis store; windows on Redis's clock. */
  redisUrl?: string
  /** Logins slowed at once, in all; past it a login that should wait is refused (429) instead. */
  maxSlowed?: number
}

/** Which account a request is about; undefined when it cannot be told (then the IP limit alone applies). */
export type AccountKey = (request: FastifyRequest) => string | undefined | Promise<string | undefined>

/** Whether the request's credential is good. */
export type CredentialCheck = (request: FastifyRequest) => boolean | Promise<boolean>

export interface LoginLimitHooks {
  preHandler: preHandlerAsyncHookHandler[]
  onError: onErrorAsyncHookHandler[]
}

declare module 'fastify' {
  interface FastifyInstance {
    limitRequests: (group: string, accountKey?: AccountKey) => preHandlerAsyncHookHandler[]
    /** For /login; spread into the route options (a failure is counted when the handler has failed). */
    limitLogin: (accountOf: (request: FastifyRequest) => string) => LoginLimitHooks | Record<string, never>
    limitRefresh: (claimsOf: (request: FastifyRequest) => RefreshTokenClaims | undefined) => preHandlerAsyncHookHandler[]
    /** `check` says whether the request's credential is good; it runs only under the failure limit. */
    limitAuthentication: (group: string, check: CredentialCheck) => preHandlerAsyncHookHandler[]
    /** limitAuthentication without the per-IP count of every request: failures alone are limited. */
    limitFailedAuthentication: (group: string, check: CredentialCheck) => preHandlerAsyncHookHandler[]
  }
}

// ---- the store: @fastify/rate-limit's store contract, in memory, on the service's clock ----

type StoreResult = { current: number, ttl: number }
type StoreCallback = (error: Error | null, result?: StoreResult) => void

export interface RateLimitStore {
  incr(key: string, callback: StoreCallback, timeWindow: number, max: number): void
  read(key: string, callback: StoreCallback, timeWindow: number, max: number): void
  child(routeOptions: object): RateLimitStore
}

/**
 * Fixed windows per key, the least recently used `size` keys kept (bounded memory), each
 * limiter its own LRU (`child`), so keys flooding one limiter never evict another's counts.
 */
export function memoryStore(now: () => Date, size: number): new (options: object) => RateLimitStore {
  return class MemoryStore implements RateLimitStore {
    private readonly windows = new LRUCache<string, { count: number, startMs: number }>({ max: size })

    incr(key: string, callback: StoreCallback, timeWindow: number): void {
      const nowMs = now().getTime()
      let window = this.windows.get(key)
      if (!window || window.startMs + timeWindow <= nowMs) {
        window = { count: 0, startMs: nowMs }
        this.windows.set(key, window)
      }
      window.count++
      callback(null, { current: window.count, ttl: window.startMs + timeWindow - nowMs })
    }

    read(key: string, callback: StoreCallback, timeWindow: number): void {
      const nowMs = now().getTime()
      const window = this.windows.get(key)
      if (!window || window.startMs + timeWindow <= nowMs) return callback(null, { current: 0, ttl: 0 })
      callback(null, { current: window.count, ttl: window.startMs + timeWindow - nowMs })
    }

    child(): RateLimitStore {
      return new MemoryStore()
    }
  }
}

/**
 * A Redis client for the counts: commands fail at once while Redis is unreachable (no offline
 * queue, one retry), so a request waits for no reconnect; reconnects go on in the background.
 */
async function connectRedis(app: FastifyInstance, url: string): Promise<Redis> {
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000 })
  let reported = false
  redis.on('error', (err: Error) => {
    if (!reported) app.log.error({ err }, 'rate-limit store (Redis) unreachable; retrying')
    reported = true
  })
  redis.on('ready', () => {
    if (reported) app.log.info('rate-limit store (Redis) reachable again')
    reported = false
  })
  app.addHook('onClose', async () => {
    redis.disconnect()
  })
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 2_000)
    redis.once('ready', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
  if (!ready) app.log.warn('rate-limit store (Redis) not reachable at start-up; limited requests answer 503 until it is')
  return redis
}

// ---- slowing ----

/** How long a login waits, given its account's failed logins in the window: 0 below the ceiling, then 250 ms doubling, capped. */
export function slowdownMs(failures: number, ceiling: number, maxMs: number): number {
  if (failures < ceiling) return 0
  return Math.min(maxMs, 250 * 2 ** Math.min(failures - ceiling, 30))
}

/** Holds requests for a while, at most `capacity` at once (bounded memory). */
export class Slowdown {
  private waiting = 0
  constructor(
    private readonly capacity: number,
    private readonly wait: (ms: number) => Promise<unknown> = (ms) => sleep(ms)
  ) {}

  get size(): number {
    return this.waiting
  }

  /** Waits `ms`; false at once, without waiting, when `capacity` requests are already waiting. */
  async hold(ms: number): Promise<boolean> {
    if (ms <= 0) return true
    if (this.waiting >= this.capacity) return false
    this.waiting++
    try {
      await this.wait(ms)
    } finally {
      this.waiting--
    }
    return true
  }
}

// ---- keys ----

/** The rate-limit key of an address: IPv4 as is, an IPv4-mapped IPv6 as its IPv4, other IPv6 as its /64. */
export function addressKey(ip: string | undefined): string {
  if (ip === undefined) return 'unknown'
  if (!isIPv6(ip)) return ip
  const address = ip.split('%')[0].toLowerCase()
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address)
  if (mapped) return mapped[1]
  const [head, tail] = address.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const rightGroups = right.reduce((n, group) => n + (group.includes('.') ? 2 : 1), 0)
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - rightGroups).fill('0'), ...right]
  return `${groups.slice(0, 4).map((group) => parseInt(group, 16).toString(16)).join(':')}::/64`
}

const addressOf = (request: FastifyRequest) => addressKey(clientIp(request))

/** A key for a refresh token that is not the token's jti itself (counts may live in a shared store). */
const tokenKey = (jti: string) => createHash('sha256').update(jti).digest('base64url')
/**
 * An account (an email, a user id) as it appears in a count's key: its SHA-256, so that the
 * shared store (the database's rate_limit_counts, or Redis) holds no email address in clear.
 */
const accountKeyOf = (account: string) => createHash('sha256').update(account).digest('base64url')

// ---- the plugin ----

interface Count {
  count: number
  /** Seconds until the window ends, at least 1. */
  retryAfter: number
}

interface Counter {
  /** Counts one and returns the count. */
  hit(request: FastifyRequest): Promise<Count>
  /** The count, without counting. */
  peek(request: FastifyRequest): Promise<Count>
}

function refuse(reply: FastifyReply, retryAfterSeconds: number): never {
  reply.header('retry-after', String(Math.max(1, retryAfterSeconds)))
  throw new TooManyRequestsError()
}

export default fp<RateLimitsOptions>(
  async function rateLimitsPlugin(app, options) {
    if (!options.enabled) {
      app.decorate('limitRequests', () => [])
      app.decorate('limitLogin', () => ({}))
      app.decorate('limitRefresh', () => [])
      app.decorate('limitAuthentication', () => [])
      app.decorate('limitFailedAuthentication', () => [])
      return
    }
    const windowMs = options.windowSeconds * 1000
    const redis = options.redisUrl ? await connectRedis(app, options.redisUrl) : undefined
    await app.register(rateLimit, {
      global: false,
      ...(redis
        ? { redis, nameSpace: 'auth-service:rate-limit:' }
        // Distinct keys remembered at once per limiter (least recently used dropped): bounded memory.
        : { store: options.store ?? memoryStore(options.now ?? (() => new Date()), 100_000) }),
      timeWindow: windowMs
    })
    /**
     * The store could not count: the request is refused (503), not let through uncounted, so an
     * outage never switches the guessing limits off (README, "Rate limits"). A database store's
     * outage is the database's (503 as everywhere); anything else is the store's.
     */
    const storeFailed = (error: unknown): never => {
      if (isDatabaseUnavailable(error)) throw error
      app.log.error({ err: error }, 'rate-limit store unreachable: limited requests are refused (503) until it answers')
      throw new RateLimitStoreUnavailableError()
    }
    const slowdown = new Slowdown(options.maxSlowed ?? 1000)
    const slowdownMaxMs = options.slowdownMaxSeconds * 1000

    /** A count per key and window. The thresholds are ours, so the limiter's own max is never reached. */
    function counter(keyOf: (request: FastifyRequest) => string | Promise<string>): Counter {
      const limiter = app.createRateLimit({ max: Number.MAX_SAFE_INTEGER, timeWindow: windowMs, keyGenerator: keyOf })
      const countOf = (status: Awaited<ReturnType<typeof limiter>>): Count =>
        status.isAllowed
          ? { count: 0, retryAfter: 1 }
          : { count: Number.MAX_SAFE_INTEGER - status.remaining, retryAfter: Math.max(1, status.ttlInSeconds) }
      return {
        hit: async (request) => countOf(await limiter(request).catch(storeFailed)),
        peek: async (request) => countOf(await limiter(request, { increment: false }).catch(storeFailed))
      }
    }

    /** Counts the request, and refuses it once the count is over `max`. */
    async function limit(counter: Counter, max: number, request: FastifyRequest, reply: FastifyReply): Promise<void> {
      const { count, retryAfter } = await counter.hit(request)
      if (count > max) refuse(reply, retryAfter)
    }

    /** Per IP every request (unless `everyRequest` is false), and failed credential checks per IP (refused before the check). */
    function authenticationLimit(group: string, check: CredentialCheck, everyRequest = true) {
      const perIp = counter((request) => `${group}:ip:${addressOf(request)}`)
      const failures = counter((request) => `${group}:failed:${addressOf(request)}`)
      return async function limitAuthentication(request: FastifyRequest, reply: FastifyReply): Promise<void> {
        if (everyRequest) await limit(perIp, options.ipMax, request, reply)
        const failed = await failures.peek(request)
        // Past the limit the credential is not checked at all: a forged token costs no signature check.
        if (failed.count >= options.accountMax) refuse(reply, failed.retryAfter)
        if (!(await check(request))) await failures.hit(request)
      }
    }

    app.decorate('limitRequests', (group: string, accountKey?: AccountKey) => {
      const perIp = counter((request) => `${group}:ip:${addressOf(request)}`)
      const perAccount = counter(async (request) => {
        const account = accountKey ? await accountKey(request) : undefined
        // Requests we cannot attribute share one bucket per IP under this group.
        return account === undefined ? `${group}:anonymous:${addressOf(request)}` : `${group}:account:${accountKeyOf(account)}`
      })
      return [
        async function limitRequests(request: FastifyRequest, reply: FastifyReply): Promise<void> {
          await limit(perIp, options.ipMax, request, reply)
          if (accountKey) await limit(perAccount, options.accountMax, request, reply)
        }
      ]
    })

    app.decorate('limitLogin', (accountOf: (request: FastifyRequest) => string) => {
      const perIp = counter((request) => `login:ip:${addressOf(request)}`)
      const pairFailures = counter((request) => `login:failed:${addressOf(request)} ${accountKeyOf(accountOf(request))}`)
      const accountFailures = counter((request) => `login:account-failed:${accountKeyOf(accountOf(request))}`)
      return {
        preHandler: [
          async function limitLogin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
            await limit(perIp, options.ipMax, request, reply)
            const [pair, account] = await Promise.all([pairFailures.peek(request), accountFailures.peek(request)])
            // This address has failed too often for this account: refused. Others are not.
            if (pair.count >= options.accountMax) refuse(reply, pair.retryAfter)
            // The account has failed too often from everywhere: slowed, never refused, known and
            // unknown emails alike (the counts are per email, whether or not it is registered).
            const ms = slowdownMs(account.count, options.accountCeiling, slowdownMaxMs)
            if (!(await slowdown.hold(ms))) refuse(reply, Math.ceil(ms / 1000))
          }
        ],
        onError: [
          async function countLoginFailure(request: FastifyRequest, _reply: FastifyReply, error: { code?: string }): Promise<void> {
            // Wrong password or unknown email (services/accounts.ts); a success is never counted.
            if (error.code !== 'AUTH_INVALID_CREDENTIALS') return
            await Promise.all([pairFailures.hit(request), accountFailures.hit(request)])
          }
        ]
      }
    })

    app.decorate('limitRefresh', (claimsOf: (request: FastifyRequest) => RefreshTokenClaims | undefined) => {
      const tokens = counter((request) => `refresh:token:${tokenKey(claimsOf(request)!.jti)}`)
      const sessions = counter((request) => `refresh:session:${claimsOf(request)!.sid}`)
      return [
        authenticationLimit('refresh', (request) => claimsOf(request) !== undefined),
        async function limitRotations(request: FastifyRequest, reply: FastifyReply): Promise<void> {
          if (claimsOf(request) === undefined) return // the handler answers 401
          // A session's count is of the distinct refresh tokens presented: a token presented
          // again (a grace-window replay, N racing tabs) is not counted again, and gets the
          // verdict its first presentation got, so repeating a refused token gains nothing. Only
          // the first presentation counts: with a shared store the replays racing it may read
          // the session's count before that presentation's count has landed, and must not add
          // one of their own.
          const presented = await tokens.hit(request)
          const rotations = presented.count === 1 ? await sessions.hit(request) : await sessions.peek(request)
          if (rotations.count > options.accountMax) refuse(reply, rotations.retryAfter)
        }
      ]
    })

    app.decorate('limitAuthentication', (group: string, check: CredentialCheck) => [authenticationLimit(group, check)])
    app.decorate('limitFailedAuthentication', (group: string, check: CredentialCheck) => [authenticationLimit(group, check, false)])
  },
  { name: 'rate-limits' }
)
