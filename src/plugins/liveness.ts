// Adds `app.sessionLiveness`: is the session behind an access token still alive? Every Bearer
// check asks it, so a deleted session's access tokens die at once (docs/api.md, "Session lifecycle").
//
// The revocation model (docs/revocation.md):
// - answers come from a bounded in-memory cache, so the hot path costs no database round trip;
// - every deletion of a session, on any instance, arrives through LISTEN/NOTIFY and marks it dead;
// - the cache is trusted only while that feed is healthy (heartbeat within a few seconds);
//   otherwise every check goes to the database, and on reconnect the cache is dropped whole;
// - if the database cannot answer either, the check throws and the request gets a 503.
import fp from 'fastify-plugin'
import { findLiveSessionOwners } from '../repositories/sessions.js'
import { LivenessCache } from '../services/liveness-cache.js'
import { SessionOwnerBatcher } from '../services/session-owner-batcher.js'

export interface SessionLiveness {
  isLive(sessionId: string, userId: string): Promise<boolean>
  /** isLive's answer when memory has it (no promise: the hot path), else undefined. */
  cached(sessionId: string, userId: string): boolean | undefined
  /** Sessions this instance just deleted: dead here at once, before the notification returns. */
  forget(sessionIds: readonly string[]): void
  /** Whether revocations from other instances are currently arriving. */
  readonly feedHealthy: boolean
  /** Sessions currently remembered (bounded by SESSION_CACHE_SIZE). */
  readonly cacheSize: number
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionLiveness: SessionLiveness
  }
}

export interface LivenessPluginOptions {
  now: () => Date
  /** SESSION_CACHE_SIZE: most sessions remembered; 0 asks the database every time. */
  cacheSize: number
  /** SESSION_CACHE_TTL in seconds: how long a "live" answer is reused. */
  cacheTtl: number
  /** Liveness queries in flight at once; the checks arriving meanwhile go together in the next. */
  lookupConcurrency: number
}

/** Most sessions in one liveness query (a few KB of parameters). */
const MOST_SESSIONS_PER_LOOKUP = 500

export default fp<LivenessPluginOptions>(
  async function livenessPlugin(app, options) {
    const cache = new LivenessCache({ max: options.cacheSize, aliveTtlMs: options.cacheTtl * 1000 })
    const handlers = {
      onRevoked: (sessionId: string) => {
        app.authMetrics.revocationNotifications.inc()
        cache.rememberDead(sessionId)
      },
      onReset: () => cache.clear(),
      onError: (err: unknown, retryInMs: number) =>
        app.log.warn({ err, retryInMs }, 'revocation listener disconnected; checking sessions in the database meanwhile')
    }

    const feed = await app.database.listenForRevocations(handlers)
    // Closed before the database (onClose hooks run in reverse order of registration).
    app.addHook('onClose', () => feed.close())

    let trustedCache = false
    const owners = new SessionOwnerBatcher({
      query: (ids) => {
        app.authMetrics.livenessQueries.inc()
        return findLiveSessionOwners(app.db, ids, options.now())
      },
      maxInFlight: options.lookupConcurrency,
      maxBatch: MOST_SESSIONS_PER_LOOKUP
    })
    const cacheAnswers = app.authMetrics.livenessChecks.labels({ source: 'cache' })
    const databaseAnswers = app.authMetrics.livenessChecks.labels({ source: 'database' })

    /** The cache's answer, or undefined when the database must be asked. */
    function cached(sessionId: string, userId: string): boolean | undefined {
      if (!feed.healthy) {
        trustedCache = false
        return undefined
      }
      if (!trustedCache) {
        // The feed just became healthy again: what was cached before may have missed revocations.
        cache.clear()
        trustedCache = true
      }
      const known = cache.lookup(sessionId, userId)
      if (known !== undefined) cacheAnswers.inc()
      return known
    }

    async function askDatabase(sessionId: string, userId: string): Promise<boolean> {
      databaseAnswers.inc()
      const epoch = cache.epoch
      const owner = await owners.owner(sessionId)
      // Gone or expired is for good (session ids are never reused); a session is alive for its owner only.
      if (owner === undefined) cache.rememberDead(sessionId)
      else cache.rememberAlive(sessionId, owner, epoch)
      return owner === userId
    }

    app.decorate('sessionLiveness', {
      cached,
      isLive: async (sessionId, userId) => cached(sessionId, userId) ?? (await askDatabase(sessionId, userId)),
      forget: (sessionIds) => {
        for (const id of sessionIds) cache.rememberDead(id)
      },
      get feedHealthy() {
        return feed.healthy
      },
      get cacheSize() {
        return cache.size
      }
    } satisfies SessionLiveness)
  },
  { name: 'liveness', dependencies: ['db', 'metrics'] }
)
