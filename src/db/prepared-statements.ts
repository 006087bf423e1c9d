import { createHash } from 'node:crypto'
import type pg from 'pg'

// Named prepared statements for the hot-path SQL on PostgreSQL: parsed and planned once per
// connection instead of on every request. Kysely's pg driver sends every query unnamed, so the pool's
// clients are taught to name the statements registered here (repositories/executor.ts registers the
// hand-written hot-path statements). PGlite runs in-process and is left as it is.
//
// Only fixed texts are registered (values always travel as parameters), so the set stays small.
// A migration that changes a table these statements use needs a restart of the service, as any
// schema change does (the service refuses to start on an outdated schema anyway).

const names = new Map<string, string>()

export function registerPreparedStatement(text: string): void {
  if (!names.has(text)) names.set(text, `auth_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`)
}

type Query = (config: unknown, values?: unknown, callback?: unknown) => unknown

/**
 * Whether a pool names its statements. Turned off for good at the first sign of a pooler that
 * hands each transaction another server connection (PgBouncer in transaction mode before 1.21):
 * a named statement missing (26000) or already there (42P05) on the connection it reached.
 */
export interface StatementNaming {
  on: boolean
  /** Called once, when naming turns off. */
  readonly onLost?: () => void
}

const LOST_STATEMENT = new Set(['26000', '42P05'])

/** Makes a pool client run registered statement texts as named prepared statements. */
export function usePreparedStatements(client: pg.PoolClient, naming: StatementNaming = { on: true }): void {
  const query = client.query.bind(client) as Query
  const prepared: Query = (config, values, callback) => {
    const name = naming.on && typeof config === 'string' ? names.get(config) : undefined
    if (name === undefined || typeof values === 'function' || callback !== undefined) return query(config, values, callback)
    return (query({ name, text: config, values }) as Promise<unknown>).catch((error: unknown) => {
      if (naming.on && LOST_STATEMENT.has((error as { code?: string }).code ?? '')) {
        naming.on = false
        naming.onLost?.()
      }
      throw error
    })
  }
  client.query = prepared as typeof client.query
}
