import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { PGlite } from '@electric-sql/pglite'
import { Kysely, PostgresDialect } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import pg from 'pg'
import { isReadOnlyRefusal } from './errors.js'
import { createPglite } from './pglite-settings.js'
import { usePreparedStatements, type StatementNaming } from './prepared-statements.js'
import type { Database } from './types.js'

export type StorageKind = 'postgres' | 'pglite'

export interface DatabaseHandle {
  readonly db: Kysely<Database>
  readonly kind: StorageKind
  /** The embedded engine, when running on PGlite (its LISTEN/NOTIFY is in-process). */
  readonly pglite?: PGlite
  readonly close: () => Promise<void>
}

export interface DatabaseOptions {
  /** A PostgreSQL connection string; unset selects the embedded PGlite. */
  readonly databaseUrl?: string
  /** Directory for PGlite's files, or `memory://` for a throw-away database (tests). */
  readonly pgliteDir: string
  readonly poolSize?: number
  /**
   * Name the registered hot-path statements (db/prepared-statements.ts); default true. False
   * behind a pooler that hands each transaction any server connection (PgBouncer in transaction
   * mode before 1.21): a statement prepared on one would be missing on the next.
   */
  readonly preparedStatements?: boolean
  /** Named statements were lost to a pooler and are off from now on (the request that met it answered 503). */
  readonly onPreparedStatementsLost?: () => void
}

// timestamptz and timestamp come back as Date on both engines; make bigint counts plain numbers on pg.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value))

/**
 * Opens the one database the service uses. The same Kysely queries run on both engines: only
 * the dialect differs.
 */
export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      // Fail fast while the server is unreachable: requests answer 503 instead of queueing.
      connectionTimeoutMillis: 5_000
    })
    // A client losing its connection emits 'error': on the pool while idle, on the client itself
    // while checked out (pg-pool removes its listener then). Unheard, either would crash the
    // process; the query in flight fails on its own (503) and the next one gets a new connection.
    pool.on('error', () => {})
    const naming: StatementNaming = { on: options.preparedStatements ?? true, onLost: options.onPreparedStatementsLost }
    pool.on('connect', (client) => {
      client.on('error', () => {})
      usePreparedStatements(client, naming)
      discardWhenReadOnly(client)
    })
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
    return { db, kind: 'postgres', close: () => db.destroy() }
  }

  const dataDir = options.pgliteDir
  if (!dataDir.startsWith('memory://')) {
    await mkdir(dataDir, { recursive: true })
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initialisePglite(dataDir)
  }
  const pglite = await createPglite(dataDir)
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) })
  return {
    db,
    kind: 'pglite',
    pglite,
    // The dialect's destroy closes the engine, and PGlite throws when closed twice.
    close: async () => {
      if (!pglite.closed) await db.destroy()
    }
  }
}

/**
 * initdb on a new data directory, in a child process (db/pglite-initdb.ts): the memory PGlite's
 * initdb takes (a second WebAssembly instance, never returned while this process lives) goes
 * with it. Bounded: a minute and a half, several times what it takes on a busy 2-core machine.
 */
async function initialisePglite(dataDir: string): Promise<void> {
  const self = import.meta.url
  // Under tsx (tests, npm run dev) this file is src/db/database.ts; compiled (npm start), dist/src/db/database.js.
  const typescript = self.endsWith('.ts')
  const script = fileURLToPath(new URL(typescript ? './pglite-initdb.ts' : './pglite-initdb.js', self))
  const args = typescript ? ['--import', import.meta.resolve('tsx'), script, dataDir] : [script, dataDir]
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, args, { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`initialising the embedded database in ${dataDir} failed: ${stderr.trim().split('\n').slice(-5).join(' ') || error.message}`))
      else resolve()
    })
  })
}

type Query = (...args: unknown[]) => unknown

/**
 * A connection whose session answered "read-only transaction" (25006: failover demoted its server,
 * or it reached a standby) is closed when it is released instead of going back to the pool: it
 * would refuse every write for as long as it lives, while a new connection reaches the current
 * primary. The request itself answers 503 (db/errors.ts).
 */
function discardWhenReadOnly(client: pg.PoolClient): void {
  const query = client.query.bind(client) as Query
  const watched: Query = (...args) => {
    const result = query(...args)
    if (result instanceof Promise) {
      return result.catch((err: unknown) => {
        if (isReadOnlyRefusal(err)) {
          // pg-pool gives each checkout its own release; one called with true destroys the client.
          const release = client.release
          client.release = () => release(true)
        }
        throw err
      })
    }
    return result
  }
  client.query = watched as typeof client.query
}

export function pgliteDirFor(dataDir: string): string {
  return path.join(dataDir, 'pglite')
}
