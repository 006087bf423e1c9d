// Deletes expired sessions every SESSION_CLEANUP_INTERVAL, in bounded batches so one run never
// holds long locks or a huge transaction. The delete trigger tells every instance, like a logout.
// Expired sessions are already refused everywhere (the liveness check compares expires_at);
// this only keeps the table small.
import fp from 'fastify-plugin'
import { deleteExpiredSessions } from '../repositories/sessions.js'

export interface SessionCleanupOptions {
  now: () => Date
  /** Seconds between runs; 0 turns the clean-up off. */
  intervalSeconds: number
  batchSize?: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Runs one clean-up now; resolves to the number of sessions deleted. */
    cleanUpExpiredSessions: () => Promise<number>
  }
}

export default fp<SessionCleanupOptions>(
  async function sessionCleanupPlugin(app, { now, intervalSeconds, batchSize = 1_000 }) {
    let running: Promise<number> | undefined

    async function runBatches(): Promise<number> {
      let total = 0
      for (;;) {
        const deleted = await deleteExpiredSessions(app.db, now(), batchSize)
        total += deleted
        if (deleted < batchSize) return total
      }
    }

    /** One run at a time; a call during a run waits for that run. */
    function cleanUp(): Promise<number> {
      running ??= runBatches().finally(() => {
        running = undefined
      })
      return running
    }

    app.decorate('cleanUpExpiredSessions', cleanUp)
    if (intervalSeconds <= 0) return

    const timer = setInterval(() => {
      cleanUp().then(
        (deleted) => {
          if (deleted > 0) app.log.info({ deleted }, 'expired sessions cleaned up')
        },
        (err: unknown) => app.log.warn({ err }, 'expired-session clean-up failed; will retry')
      )
    }, intervalSeconds * 1000)
    timer.unref()
    app.addHook('onClose', async () => {
      clearInterval(timer)
      await running?.catch(() => {})
    })
  },
  { name: 'session-cleanup', dependencies: ['db'] }
)
