// Periodic housekeeping, every SESSION_CLEANUP_INTERVAL: deletes expired sessions, audit events
// older than AUDIT_RETENTION, Shared Signals events older than SSF_EVENT_RETENTION and poll
// streams not polled for SSF_STREAM_IDLE_TTL, ended rate-limit windows and expired recovery
// tokens (their mails with them), in bounded batches so one run never holds long locks or
// a huge transaction. Expired sessions are already refused everywhere (the liveness check
// compares expires_at); this only keeps the tables small. Every instance runs it; concurrent
// runs skip each other's rows (SKIP LOCKED).
import fp from 'fastify-plugin'
import { deleteAuthEventsBefore } from '../repositories/auth-events.js'
import { deleteSecurityEventsBefore } from '../repositories/security-events.js'
import { deleteExpiredSessions } from '../repositories/sessions.js'
import { deleteIdlePollStreams } from '../repositories/ssf-streams.js'
import { deleteExpiredWindows } from '../repositories/rate-limit-counts.js'
import { deleteTokensExpiredBefore } from '../repositories/recovery-tokens.js'

export interface HousekeepingOptions {
  now: () => Date
  /** Seconds between runs; 0 turns the timer off. */
  intervalSeconds: number
  /** Seconds an audit event is kept; 0 keeps them forever. */
  auditRetentionSeconds: number
  /** Seconds a Shared Signals event is kept. */
  securityEventRetentionSeconds: number
  /** Seconds a poll stream may go unpolled (SSF_STREAM_IDLE_TTL); 0 keeps them. */
  ssfStreamIdleSeconds?: number
  batchSize?: number
}

export interface HousekeepingResult {
  expiredSessions: number
  auditEvents: number
  securityEvents: number
  idleStreams: number
  rateLimitWindows: number
  /** Expired password-reset and verification tokens, with their outbox rows. */
  recoveryTokens: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Runs housekeeping now (also what the timer does); a call during a run waits for it. */
    runHousekeeping: () => Promise<HousekeepingResult>
  }
}

/** Calls `deleteBatch` until a batch comes back short of `batchSize`; returns the total. */
async function inBatches(batchSize: number, deleteBatch: (limit: number) => Promise<number>): Promise<number> {
  let total = 0
  for (;;) {
    const deleted = await deleteBatch(batchSize)
    total += deleted
    if (deleted < batchSize) return total
  }
}

export default fp<HousekeepingOptions>(
  async function housekeepingPlugin(app, { now, intervalSeconds, auditRetentionSeconds, securityEventRetentionSeconds, ssfStreamIdleSeconds = 0, batchSize = 1_000 }) {
    let running: Promise<HousekeepingResult> | undefined

    async function run(): Promise<HousekeepingResult> {
      const at = now()
      const expiredSessions = await inBatches(batchSize, (limit) => deleteExpiredSessions(app.db, at, limit))
      const cutoff = new Date(at.getTime() - auditRetentionSeconds * 1000)
      const auditEvents =
        auditRetentionSeconds > 0 ? await inBatches(batchSize, (limit) => deleteAuthEventsBefore(app.db, cutoff, limit)) : 0
      const eventCutoff = new Date(at.getTime() - securityEventRetentionSeconds * 1000)
      const securityEvents = await inBatches(batchSize, (limit) => deleteSecurityEventsBefore(app.db, eventCutoff, limit))
      const idleCutoff = new Date(at.getTime() - ssfStreamIdleSeconds * 1000)
      const idleStreams = ssfStreamIdleSeconds > 0 ? await inBatches(batchSize, (limit) => deleteIdlePollStreams(app.db, idleCutoff, limit)) : 0
      const rateLimitWindows = await inBatches(batchSize, (limit) => deleteExpiredWindows(app.db, at, limit))
      const recoveryTokens = await inBatches(batchSize, (limit) => deleteTokensExpiredBefore(app.db, at, limit))
      return { expiredSessions, auditEvents, securityEvents, idleStreams, rateLimitWindows, recoveryTokens }
    }

    function runOnce(): Promise<HousekeepingResult> {
      running ??= run().finally(() => {
        running = undefined
      })
      return running
    }

    app.decorate('runHousekeeping', runOnce)
    if (intervalSeconds <= 0) return

    const timer = setInterval(() => {
      runOnce().then(
        (result) => {
          if (Object.values(result).some((count) => count > 0)) app.log.info(result, 'housekeeping: old rows deleted')
        },
        (err: unknown) => app.log.warn({ err }, 'housekeeping failed; will retry')
      )
    }, intervalSeconds * 1000)
    timer.unref()
    app.addHook('onClose', async () => {
      clearInterval(timer)
      await running?.catch(() => {})
    })
  },
  { name: 'housekeeping', dependencies: ['db'] }
)
