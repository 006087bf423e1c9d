// Where the rate-limit counts live (docs/security.md, "Rate limits and lockout"): in the service's
// own database by default, so every instance counts against one total, or in Redis with
// REDIS_URL. Both implement @fastify/rate-limit's store contract, `read` included.
import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { countInWindow, readWindow } from '../repositories/rate-limit-counts.js'
import type { RateLimitStore } from './rate-limits.js'

type StoreClass = new (options: object) => RateLimitStore

/** The counts in `rate_limit_counts`: one atomic upsert per count, windows on `now`. */
export function databaseStore(db: Kysely<Database>, now: () => Date): StoreClass {
  return class DatabaseStore implements RateLimitStore {
    incr(key: string, callback: Parameters<RateLimitStore['incr']>[1], timeWindow: number): void {
      const at = now()
      countInWindow(db, key, at, timeWindow).then(
        (window) => callback(null, { current: window.count, ttl: window.expiresAt.getTime() - at.getTime() }),
        (error: Error) => callback(error)
      )
    }

    read(key: string, callback: Parameters<RateLimitStore['read']>[1]): void {
      const at = now()
      readWindow(db, key, at).then(
        (window) => callback(null, window ? { current: window.count, ttl: window.expiresAt.getTime() - at.getTime() } : { current: 0, ttl: 0 }),
        (error: Error) => callback(error)
      )
    }

    // Keys carry their limiter's name already (rate-limits.ts): one table serves them all.
    child(): RateLimitStore {
      return new DatabaseStore()
    }
  }
}
