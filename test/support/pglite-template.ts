// One migrated PGlite database per test run instead of one initdb + migration per app: a fresh
// PGlite spends 2-4 s in initdb, opening a copy of an initialised data directory well under one.
//
// The template is an on-disk PGlite data directory under the OS temp directory, keyed by a hash of
// the migrations and the PGlite version, so a changed migration makes a new one. tap's `before`
// script (.taprc) makes it once before the suite; the helper also makes it on first use when a
// file runs on its own. Made in a directory of its own and renamed into place, so a concurrent
// reader never sees half of one. The app still migrates every copy (a no-op on a current template).
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
/** Settings of the template's own (postgresql.auto.conf); part of its key. */
const SETTINGS = "shared_buffers = '16MB'\n"

function templateKey(): string {
  const hash = createHash('sha256')
  const pglite = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8'))
  hash.update(`pglite ${pglite.version}\n${SETTINGS}`)
  for (const name of readdirSync(MIGRATIONS).sort()) {
    hash.update(`${name}\n`)
    hash.update(readFileSync(path.join(MIGRATIONS, name)))
  }
  return hash.digest('hex').slice(0, 16)
}

/** The migrated template's data directory, made if it does not exist yet. */
export async function pgliteTemplate(): Promise<string> {
  const dir = path.join(tmpdir(), `auth-service-pglite-template-${templateKey()}`)
  if (existsSync(path.join(dir, 'PG_VERSION'))) return dir
  const building = `${dir}.${randomUUID()}.tmp`
  try {
    const pglite = await PGlite.create(building)
    const db = new Kysely<any>({ dialect: new PGliteDialect(pglite) })
    await migrateToLatest(db)
    await db.destroy()
    appendFileSync(path.join(building, 'postgresql.auto.conf'), SETTINGS)
    renameSync(building, dir)
  } catch (error) {
    // Another process got there first: its template is as good as this one.
    if (!existsSync(path.join(dir, 'PG_VERSION'))) throw error
  } finally {
    rmSync(building, { recursive: true, force: true })
  }
  return dir
}

/**
 * Copies the template to `target` (a PGlite data directory that must not exist yet). With cp(1)
 * where there is one: Node's fs.cp walks the thousand files in JavaScript, at several times the
 * CPU and wall time.
 */
export async function copyPgliteTemplate(target: string): Promise<void> {
  const template = await pgliteTemplate()
  try {
    await promisify(execFile)('cp', ['-R', template, target])
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || existsSync(target)) throw error
    await cp(template, target, { recursive: true })
  }
}
