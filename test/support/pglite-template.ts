// One migrated PGlite database per test run instead of one initdb + migration per app: a fresh
// PGlite spends 2-4 s in initdb, opening a copy of an initialised data directory well under one.
//
// The template is an on-disk PGlite data directory under the OS temp directory, keyed by a hash of
// the migrations and the PGlite version, so a changed migration makes a new one. tap's `before`
// script (.taprc) makes it once before the suite; the helper also makes it on first use when a
// file runs on its own. Made in a directory of its own and renamed into place, so a concurrent
// reader never sees half of one. The app still migrates every copy (a no-op on a current template).
// It is made from an initialised empty one (initdb only), kept too: test/db/migrations.test.ts
// runs the migrations from scratch on a copy of that.
// Its shared_buffers is 16 MB instead of PGlite's 128 MB: a test database holds a few hundred rows,
// and each open instance then costs about 250 MB less memory and a tenth of a second less CPU.
import { execFile } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { cp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import { Kysely } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import { migrateToLatest } from '../../src/db/migrate.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const MIGRATIONS = path.join(ROOT, 'migrations')
/** Settings of the templates' own (postgresql.auto.conf); part of their key. */
const SETTINGS = "shared_buffers = '16MB'\n"

function key(withMigrations: boolean): string {
  const hash = createHash('sha256')
  const pglite = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8'))
  hash.update(`pglite ${pglite.version}\n${SETTINGS}`)
  if (withMigrations) {
    for (const name of readdirSync(MIGRATIONS).sort()) {
      hash.update(`${name}\n`)
      hash.update(readFileSync(path.join(MIGRATIONS, name)))
    }
  }
  return hash.digest('hex').slice(0, 16)
}

/** Makes the data directory `dir` with `make` (in a directory of its own) unless it exists. */
async function once(dir: string, make: (building: string) => Promise<void>): Promise<string> {
  if (existsSync(path.join(dir, 'PG_VERSION'))) return dir
  const building = `${dir}.${randomUUID()}.tmp`
  try {
    await make(building)
    renameSync(building, dir)
  } catch (error) {
    // Another process got there first: its directory is as good as this one.
    if (!existsSync(path.join(dir, 'PG_VERSION'))) throw error
  } finally {
    rmSync(building, { recursive: true, force: true })
  }
  return dir
}

/** An initialised PGlite data directory with nothing in it (initdb only), made once. */
export async function emptyPgliteDataDir(): Promise<string> {
  return once(path.join(tmpdir(), `auth-service-pglite-empty-${key(false)}`), async (building) => {
    await (await PGlite.create(building)).close()
    appendFileSync(path.join(building, 'postgresql.auto.conf'), SETTINGS)
  })
}

/** The migrated template's data directory, made if it does not exist yet. */
export async function pgliteTemplate(): Promise<string> {
  return once(path.join(tmpdir(), `auth-service-pglite-template-${key(true)}`), async (building) => {
    await copyDataDir(await emptyPgliteDataDir(), building)
    const db = new Kysely<any>({ dialect: new PGliteDialect(await PGlite.create(building)) })
    await migrateToLatest(db)
    await db.destroy()
  })
}

/** Copies the migrated template to `target` (a PGlite data directory that must not exist yet). */
export async function copyPgliteTemplate(target: string): Promise<void> {
  await copyDataDir(await pgliteTemplate(), target)
}

/**
 * With cp(1) where there is one: Node's fs.cp walks the thousand files in JavaScript, at several
 * times the CPU and wall time.
 */
export async function copyDataDir(source: string, target: string): Promise<void> {
  try {
    await promisify(execFile)('cp', ['-R', source, target])
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || existsSync(target)) throw error
    await cp(source, target, { recursive: true })
  }
}
