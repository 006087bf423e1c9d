// The migrations on an empty database: every test app starts from a migrated template
// (test/support/pglite-template.ts), so this is where they run from scratch, up and back down.
import { promises as fs, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import { FileMigrationProvider, Kysely, Migrator, NO_MIGRATIONS, sql } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import t, { type Test } from 'tap'
import { assertMigrated, migrateToLatest } from '../../src/db/migrate.js'
import { copyDataDir, emptyPgliteDataDir, pgliteTemplate } from '../support/pglite-template.js'

const MIGRATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations')

async function open(dataDir: string): Promise<Kysely<any>> {
  return new Kysely<any>({ dialect: new PGliteDialect(await PGlite.create(dataDir)) })
}

/** Our tables, columns, indexes, triggers and functions, as text to compare. */
async function schemaOf(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ line: string }>`
    select 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') as line
      from information_schema.columns where table_schema = 'public' and table_name not like 'kysely_%'
    union all
    select 'index ' || indexdef from pg_indexes where schemaname = 'public' and tablename not like 'kysely_%'
    union all
    select 'trigger ' || tgname || ' ' || pg_get_triggerdef(oid) from pg_trigger where not tgisinternal
    union all
    select 'function ' || proname || ' ' || md5(prosrc) from pg_proc where pronamespace = 'public'::regnamespace
    order by 1`.execute(db)
  return rows.map((row) => row.line)
}

// One empty database for both tests, a copy of an initialised one: up first, then down and up.
const db = await open(await copyOf(t, emptyPgliteDataDir, 'empty'))
t.teardown(() => db.destroy())

t.test('on an empty database every migration applies in order, then nothing is pending', async (t) => {
  const files = (await fs.readdir(MIGRATIONS)).map((name) => name.replace(/\.ts$/, '')).sort()

  const first = await migrateToLatest(db)
  t.same(first.results?.map((r) => [r.migrationName, r.direction, r.status]), files.map((name) => [name, 'Up', 'Success']))
  const again = await migrateToLatest(db)
  t.same(again.results, [], 'migrating a migrated database does nothing')
  await t.resolves(assertMigrated(db))

  const template = await open(await copyOf(t, pgliteTemplate, 'template'))
  t.teardown(() => template.destroy())
  t.same(await schemaOf(db), await schemaOf(template), 'the test template has exactly this schema')
})

t.test('every migration rolls back: down to nothing, and up again', async (t) => {
  const migrator = new Migrator({ db, provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS }) })
  const migrated = await schemaOf(db)
  t.ok(migrated.length > 0)

  const down = await migrator.migrateTo(NO_MIGRATIONS)
  t.error(down.error)
  t.ok(down.results?.length && down.results.every((r) => r.direction === 'Down' && r.status === 'Success'), 'every down() succeeded')
  t.same(await schemaOf(db), [], 'nothing of ours is left')

  await migrateToLatest(db)
  t.same(await schemaOf(db), migrated, 'up again: the same schema')
})

/** A throw-away copy of a data directory (PGlite writes to the directory it opens). */
async function copyOf(t: Test, source: () => Promise<string>, name: string): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), `auth-test-migrations-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  await copyDataDir(await source(), path.join(dir, 'pglite'))
  return path.join(dir, 'pglite')
}
