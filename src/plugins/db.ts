// Adds `app.db` (Kysely) on PostgreSQL when DATABASE_URL is set, else on the embedded PGlite,
// and closes it with the app. https://kysely.dev/docs/getting-started
import fp from 'fastify-plugin'
import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import { openDatabase, type DatabaseHandle, type StorageKind } from '../db/database.js'
import { assertMigrated, migrateToLatest } from '../db/migrate.js'
import { listenOnPglite, listenOnPostgres, type FeedHandlers, type RevocationFeed } from '../db/revocation-feed.js'
import type { Database } from '../db/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Kysely<Database>
    database: {
      kind: StorageKind
      handle: DatabaseHandle
      ping: () => Promise<boolean>
      /** Every session deletion, by any instance, as it commits (db/revocation-feed.ts). */
      listenForRevocations: (handlers: FeedHandlers) => Promise<RevocationFeed>
      /**
       * Called whenever security events were recorded by any instance, and when the feed
       * reconnects (notifications may have been missed); returns the unsubscribe. The feed
       * opened by listenForRevocations carries these too (docs/ssf.md, "Long polls").
       */
      onSecurityEvent: (listener: () => void) => () => void
    }
  }
}

export interface DbPluginOptions {
  databaseUrl?: string
  /** The LISTEN connection's URL (default: databaseUrl). */
  listenUrl?: string
  /** Named prepared statements for the hot path (default true). */
  preparedStatements?: boolean
  pgliteDir: string
  poolSize?: number
  /** Apply pending migrations at start-up; defaults to true on PGlite only (PostgreSQL: `npm run migrate`). */
  migrate?: boolean
}

const PING_TIMEOUT_MS = 2_000

export default fp<DbPluginOptions>(
  async function dbPlugin(app, options) {
    const handle = await openDatabase({
      ...options,
      onPreparedStatementsLost: () => app.log.error(
        'named prepared statements failed: DATABASE_URL reaches PostgreSQL through a pooler in transaction mode (PgBouncer before 1.21); ' +
        'they are off from now on; set PG_PREPARED_STATEMENTS=off (docs/operations.md, "PgBouncer")'
      )
    })
    app.addHook('onClose', () => handle.close())

    if (options.migrate ?? handle.kind === 'pglite') {
      await migrateToLatest(handle.db)
    } else {
      await assertMigrated(handle.db)
    }

    async function ping(): Promise<boolean> {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS)
      })
      try {
        return await Promise.race([sql`select 1`.execute(handle.db).then(() => true), timeout])
      } catch {
        return false
      } finally {
        clearTimeout(timer)
      }
    }

    const securityEventListeners = new Set<() => void>()
    const securityEventsRecorded = () => {
      for (const listener of securityEventListeners) listener()
    }
    function onSecurityEvent(listener: () => void): () => void {
      securityEventListeners.add(listener)
      return () => securityEventListeners.delete(listener)
    }

    // PGlite's LISTEN works inside this process; on PostgreSQL the listener has a connection of its own.
    async function listenForRevocations(handlers: FeedHandlers): Promise<RevocationFeed> {
      const withEvents: FeedHandlers = {
        ...handlers,
        onSecurityEvent: securityEventsRecorded,
        onReset: () => {
          handlers.onReset()
          securityEventsRecorded()
        }
      }
      if (handle.pglite) return listenOnPglite(handle.pglite, withEvents)
      return listenOnPostgres({ connectionString: options.listenUrl ?? options.databaseUrl! }, withEvents)
    }

    app.decorate('db', handle.db)
    app.decorate('database', { kind: handle.kind, handle, ping, listenForRevocations, onSecurityEvent })
  },
  { name: 'db' }
)
