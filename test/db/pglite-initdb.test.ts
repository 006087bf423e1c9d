// A new embedded database on disk: openDatabase runs initdb and the migrations in a child process
// (src/db/pglite-initdb.ts), then opens the directory as on a restart, with the service's
// shared_buffers (src/db/pglite-settings.ts). Every other test starts from a copied template.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { sql } from 'kysely'
import t from 'tap'
import { openDatabase } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'

const MIGRATIONS = new URL('../../migrations/', import.meta.url)

t.test('a fresh data directory is initialised, migrated, closed and opened again with its rows', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'auth-pglite-initdb-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const pgliteDir = path.join(root, 'nested', 'pglite')

  const first = await openDatabase({ pgliteDir })
  t.ok(existsSync(path.join(pgliteDir, 'PG_VERSION')), 'initdb wrote the data directory')
  const applied = await sql<{ count: number }>`select count(*)::int as count from kysely_migration`.execute(first.db)
  t.equal(applied.rows[0]!.count, readdirSync(MIGRATIONS).filter((name) => name.endsWith('.ts')).length, 'the child applied every migration')
  const { results } = await migrateToLatest(first.db)
  t.same(results, [], 'so the service has none left to apply')
  const { rows } = await sql<{ shared_buffers: string }>`show shared_buffers`.execute(first.db)
  t.equal(rows[0]!.shared_buffers, '16MB', 'the service runs PGlite with 16 MB of shared buffers')
  await sql`create table footprint_probe (email text)`.execute(first.db)
  await sql`insert into footprint_probe values ('initdb@example.com')`.execute(first.db)
  await first.close()

  const again = await openDatabase({ pgliteDir })
  t.teardown(() => again.close())
  const users = await sql<{ email: string }>`select email from footprint_probe`.execute(again.db)
  t.same(users.rows.map((row) => row.email), ['initdb@example.com'], 'the reopened directory has the row')
})

t.test('initdb that cannot write its directory stops the start with the reason', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'auth-pglite-initdb-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const pgliteDir = path.join(root, 'pglite')
  // A file where the data directory's base/ must go: initdb fails in its child process.
  mkdirSync(pgliteDir)
  writeFileSync(path.join(pgliteDir, 'base'), 'not a directory')
  await t.rejects(openDatabase({ pgliteDir }), /initialising the embedded database in .* failed/)
})
