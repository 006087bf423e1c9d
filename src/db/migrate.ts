import { promises as fs } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FileMigrationProvider, Migrator, type Kysely, type MigrationResultSet } from 'kysely'

// migrations/ sits at the project root, two levels above this file (also in dist/).
const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url))

export class MigrationError extends Error {
  override name = 'MigrationError'
}

function createMigrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }) })
}

/** Applies every pending migration (Kysely's Migrator takes a lock, so instances may race). */
export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  const result = await createMigrator(db).migrateToLatest()
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown'
    const reason = result.error instanceof Error ? result.error.message : String(result.error)
    throw new MigrationError(`migration ${failed} failed: ${reason}`, { cause: result.error })
  }
  return result
}

/**
 * On PostgreSQL migrations are an explicit step (`npm run migrate`): refuse to serve on a schema
 * that is behind rather than answer 500s.
 */
export async function assertMigrated(db: Kysely<any>): Promise<void> {
  const pending = (await createMigrator(db).getMigrations()).filter((m) => !m.executedAt)
  if (pending.length > 0) {
    throw new MigrationError(`database schema is behind (${pending.length} pending migration(s)): run npm run migrate`)
  }
}
