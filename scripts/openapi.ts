// Writes the OpenAPI document the service serves at GET /docs/json to a file, for generating
// clients: `tsx scripts/openapi.ts [out.json]` (default openapi.json in the current directory).
//
// The app is built on a throw-away in-memory PGlite with a development signing key in a
// temporary DATA_DIR: the environment (DATABASE_URL included) is ignored, nothing listens and
// no real database is touched. The document depends only on the route schemas.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'

const out = path.resolve(process.argv[2] ?? 'openapi.json')
const dataDir = mkdtempSync(path.join(tmpdir(), 'auth-openapi-'))
try {
  const config = loadConfig({
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    RATE_LIMIT: 'off',
    SESSION_CLEANUP_INTERVAL: '0'
  })
  const app = await buildApp(config, { pgliteDir: 'memory://', migrate: true })
  try {
    await app.ready()
    mkdirSync(path.dirname(out), { recursive: true })
    writeFileSync(out, `${JSON.stringify(app.swagger(), null, 2)}\n`)
  } finally {
    await app.close()
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true })
}
console.log(`wrote ${path.relative(process.cwd(), out) || out}`)
