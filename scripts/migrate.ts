// `npm run migrate`: applies pending migrations to DATABASE_URL, or to the embedded PGlite in
// DATA_DIR when DATABASE_URL is unset.
import { loadConfig } from '../src/config.js'
import { openDatabase, pgliteDirFor } from '../src/db/database.js'
import { migrateToLatest } from '../src/db/migrate.js'

const config = loadConfig()
const handle = await openDatabase({ databaseUrl: config.databaseUrl, preparedStatements: config.preparedStatements, pgliteDir: pgliteDirFor(config.dataDir) })
try {
  const { results = [] } = await migrateToLatest(handle.db)
  for (const result of results) console.log(`${result.status}: ${result.migrationName}`)
  console.log(results.length === 0 ? 'database is up to date' : `applied ${results.length} migration(s) on ${handle.kind}`)
} catch (err) {
  console.error(`Migration failed: ${(err as Error).message}`)
  process.exitCode = 1
} finally {
  await handle.close()
}
