// Run as a child process by openDatabase (db/database.ts) on a data directory without a database:
// initialises it, applies the migrations and exits. In the service's own process initdb left its
// peak behind: PGlite runs initdb in a second WebAssembly instance, and a WebAssembly memory never
// shrinks and is freed only when collected, so a first start held about twice the memory of a
// restart on the same directory. The first schema grows it by about 30 MB more. Here that memory
// goes with the process; the service then opens the directory as on a restart.
import { Kysely } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import { migrateToLatest } from './migrate.js'
import { createPglite } from './pglite-settings.js'

const dataDir = process.argv[2]
if (!dataDir) {
  console.error('usage: pglite-initdb <data directory>')
  process.exit(2)
}
const pglite = await createPglite(dataDir)
const db = new Kysely<unknown>({ dialect: new PGliteDialect(pglite) })
try {
  await migrateToLatest(db)
} finally {
  // The dialect's destroy closes the engine.
  await db.destroy()
}
