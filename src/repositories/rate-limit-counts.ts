// The shared rate-limit counts (migrations/…_rate_limit_counts.ts): fixed windows, one atomic
// statement per count, on the service's clock (the times travel as parameters, so a test's clock
// moves the windows as it moves everything else).
import { sql } from 'kysely'
import type { Executor } from './executor.js'
import { runStatement } from './executor.js'

export interface WindowCount {
  readonly count: number
  readonly expiresAt: Date
}

// A new window when there is none or it has expired, else one more in the current one: no read
// then write, so instances racing on one key never both see the same count.
const COUNT = `insert into rate_limit_counts as c (key, count, expires_at) values ($1, 1, $3)
on conflict (key) do update set
  count = case when c.expires_at <= $2 then 1 else c.count + 1 end,
  expires_at = case when c.expires_at <= $2 then excluded.expires_at else c.expires_at end
returning count, expires_at`

const READ = 'select count, expires_at from rate_limit_counts where key = $1 and expires_at > $2'

/** Counts one for `key` in its window (a new one of `windowMs` from `at` if none is running). */
export async function countInWindow(db: Executor, key: string, at: Date, windowMs: number): Promise<WindowCount> {
  const [row] = await runStatement<{ count: number, expires_at: Date }>(db, COUNT, [key, at, new Date(at.getTime() + windowMs)])
  return { count: row.count, expiresAt: row.expires_at }
}

/** The running window's count for `key`, or undefined. */
export async function readWindow(db: Executor, key: string, at: Date): Promise<WindowCount | undefined> {
  const [row] = await runStatement<{ count: number, expires_at: Date }>(db, READ, [key, at])
  return row ? { count: row.count, expiresAt: row.expires_at } : undefined
}

/** Deletes up to `limit` windows that ended before `before`; returns how many. */
export async function deleteExpiredWindows(db: Executor, before: Date, limit: number): Promise<number> {
  const result = await sql`
    delete from rate_limit_counts where key in (
      select key from rate_limit_counts where expires_at < ${before} limit ${limit} for update skip locked
    )`.execute(db)
  return Number(result.numAffectedRows ?? 0)
}
