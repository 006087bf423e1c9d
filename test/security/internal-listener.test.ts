// GET /metrics and /docs off the public port (docs/security.md, "Internal endpoints and
// headers"): METRICS and DOCS say where they are served, the internal listener (app.internal,
// INTERNAL_HOST:INTERNAL_PORT) serves what is `internal`, and production defaults to that.
import { createServer, type AddressInfo } from 'node:net'
import t from 'tap'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { loadConfig } from '../../src/config.js'
import { API_PREFIX, bearer, buildTestApp, registerUser } from '../helper.js'
import { freePort, startServer } from '../support/server-process.js'

t.test('configuration: production keeps /metrics and /docs off the public port by default', async (t) => {
  const production = loadConfig({ NODE_ENV: 'production' })
  t.equal(production.metrics, 'internal')
  t.equal(production.docs, 'internal')
  t.same(production.internal, { host: '127.0.0.1', port: 9100 })
  const development = loadConfig({ NODE_ENV: 'development' })
  t.equal(development.metrics, 'public', 'outside production: one port, as before')
  t.equal(development.docs, 'public')
  t.same(loadConfig({ INTERNAL_PORT: 'off' }).internal, { host: '127.0.0.1', port: null })
  t.same(loadConfig({ INTERNAL_HOST: '0.0.0.0', INTERNAL_PORT: '0' }).internal, { host: '0.0.0.0', port: 0 })
  t.equal(loadConfig({ NODE_ENV: 'production', DOCS: 'off' }).docs, 'off')

  t.throws(() => loadConfig({ NODE_ENV: 'production', INTERNAL_PORT: 'off' }), /METRICS=internal needs the internal listener/)
  t.throws(() => loadConfig({ INTERNAL_PORT: 'off', METRICS: 'public', DOCS: 'internal' }), /DOCS=internal needs/)
  t.throws(() => loadConfig({ INTERNAL_PORT: 'nine' }), /INTERNAL_PORT/)
  t.throws(() => loadConfig({ INTERNAL_PORT: '70000' }), /INTERNAL_PORT/)
  t.throws(() => loadConfig({ METRICS: 'private' }), /METRICS/)
  t.throws(() => loadConfig({ PORT: '9100', METRICS: 'internal' }), /INTERNAL_PORT must differ from PORT/)
})

t.test('METRICS=internal, DOCS=internal: 404 on the public app, served by app.internal', async (t) => {
  const { app } = await buildTestApp(t, { env: { METRICS: 'internal', DOCS: 'internal', INTERNAL_PORT: '0' } })
  t.ok(app.internal, 'an internal app')
  const internal = app.internal!
  const pair = await registerUser(app)
  t.equal((await app.inject({ method: 'GET', url: `${API_PREFIX}/me`, headers: bearer(pair.access_token) })).statusCode, 200)

  for (const url of ['/metrics', '/docs', '/docs/json', '/docs/static/index.html', '/docs/yaml']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, `public ${url}: 404`)
  }

  const metrics = await internal.inject({ method: 'GET', url: '/metrics' })
  t.equal(metrics.statusCode, 200, 'internal /metrics')
  t.match(metrics.headers['content-type'], /text\/plain/)
  t.match(metrics.body, /http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/auth\/me",status_code="200"\} 1/, "the public app's traffic")
  t.match(metrics.body, /auth_events_total\{kind="register"\} 1/)
  t.match(metrics.body, /process_resident_memory_bytes/)

  const doc = await internal.inject({ method: 'GET', url: '/docs/json' })
  t.equal(doc.statusCode, 200, 'internal /docs/json')
  t.ok(doc.json().paths[`${API_PREFIX}/logout`], "the document describes the public app's routes")
  t.notOk(doc.json().paths['/metrics'], 'and not the internal ones')
  const ui = await internal.inject({ method: 'GET', url: '/docs' })
  t.equal(ui.statusCode, 200, 'internal /docs')
  t.match(ui.body, /swagger-ui/)

  const other = await internal.inject({ method: 'GET', url: '/health/ready' })
  t.equal(other.statusCode, 404, 'the internal listener serves nothing else')
  t.equal(other.headers['cache-control'], 'no-store')
})

t.test('METRICS=internal, DOCS=public: each where it is configured', async (t) => {
  const { app } = await buildTestApp(t, { env: { METRICS: 'internal', DOCS: 'public', INTERNAL_PORT: '0' } })
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: '/docs/json' })).statusCode, 200)
  t.equal((await app.internal!.inject({ method: 'GET', url: '/metrics' })).statusCode, 200)
  t.equal((await app.internal!.inject({ method: 'GET', url: '/docs/json' })).statusCode, 404)
})

t.test('DOCS=off, METRICS=off: neither anywhere, and no internal listener', async (t) => {
  const { app } = await buildTestApp(t, { env: { METRICS: 'off', DOCS: 'off' } })
  t.equal(app.internal, null)
  for (const url of ['/metrics', '/docs', '/docs/json']) t.equal((await app.inject({ method: 'GET', url })).statusCode, 404, `${url}: 404`)
  t.ok(app.swagger().paths, 'the document is still built (npm run openapi)')
})

t.test('the real server: /metrics and /docs on INTERNAL_PORT only, both closed on SIGTERM', async (t) => {
  const internalPort = await freePort()
  const server = await startServer({ METRICS: 'internal', DOCS: 'internal', INTERNAL_HOST: '127.0.0.1', INTERNAL_PORT: String(internalPort) })
  t.teardown(() => server.stop())
  const internalUrl = `http://127.0.0.1:${internalPort}`

  t.equal((await fetch(`${server.url}/metrics`)).status, 404, 'public /metrics: 404')
  t.equal((await fetch(`${server.url}/docs`)).status, 404, 'public /docs: 404')
  t.equal((await fetch(`${server.url}/health/ready`)).status, 200, 'public /health/ready: 200')
  const metrics = await fetch(`${internalUrl}/metrics`)
  t.equal(metrics.status, 200, 'internal /metrics: 200')
  t.match(await metrics.text(), /http_request_duration_seconds_count\{method="GET",route="\/health\/ready",status_code="200"\}/)
  const doc = await fetch(`${internalUrl}/docs/json`)
  t.equal(doc.status, 200, 'internal /docs/json: 200')
  t.equal(doc.headers.get('x-content-type-options'), 'nosniff')
  t.equal((await fetch(`${internalUrl}/api/v1/auth/verify`)).status, 404, 'no API on the internal port')

  t.equal(await server.stop(), 0, 'exits 0 on SIGTERM')
  await t.rejects(fetch(`${internalUrl}/metrics`), 'the internal port is closed')
  await t.rejects(fetch(`${server.url}/health/live`), 'the public port is closed')
})

t.test('the real server: an internal port that is taken stops the start-up with one clear line', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const takenPort = (blocker.address() as AddressInfo).port
  await t.rejects(startServer({ METRICS: 'internal', INTERNAL_PORT: String(takenPort) }), /Cannot listen on 127\.0\.0\.1:\d+ \(INTERNAL_HOST, INTERNAL_PORT\)/)
})

t.test('cluster mode: any worker answers a scrape with every worker\'s metrics, summed', { skip: process.env.TEST_DATABASE_URL ? false : 'needs PostgreSQL: set TEST_DATABASE_URL (cluster mode refuses PGlite)' }, async (t) => {
  const internalPort = await freePort()
  const server = await startServer(
    { DATABASE_URL: process.env.TEST_DATABASE_URL!, JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA'), WORKERS: '2', METRICS: 'internal', DOCS: 'internal', INTERNAL_PORT: String(internalPort) },
    { entry: 'src/cluster.ts' }
  )
  t.teardown(() => server.stop())
  // A new connection each time, so node:cluster hands the requests to both workers.
  const get = async (url: string) => {
    const res = await fetch(url, { headers: { connection: 'close' } })
    return { status: res.status, text: await res.text() }
  }
  const REQUESTS = 20
  for (let i = 0; i < REQUESTS; i++) t.equal((await get(`${server.url}/health/live`)).status, 200)
  for (let scrape = 0; scrape < 4; scrape++) {
    const metrics = await get(`http://127.0.0.1:${internalPort}/metrics`)
    t.equal(metrics.status, 200, `scrape ${scrape + 1}: 200`)
    const count = /http_request_duration_seconds_count\{method="GET",route="\/health\/live",status_code="200"\} (\d+)/.exec(metrics.text)
    t.equal(Number(count?.[1]), REQUESTS, `scrape ${scrape + 1}: all ${REQUESTS} requests, whichever worker served them`)
  }
  t.equal((await get(`http://127.0.0.1:${internalPort}/docs/json`)).status, 200, 'the docs from any worker')
})
