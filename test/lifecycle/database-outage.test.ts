// While PostgreSQL is unreachable, /health/ready answers 503 and every request that
// needs the database answers 503 (never 500, never a cached "yes"); when it is back, the same
// process serves again without a restart.
import t from 'tap'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, me, registerUser } from '../helper.js'
import { startTcpProxy } from '../support/tcp-proxy.js'

const databaseUrl = process.env.TEST_DATABASE_URL

t.test('database outage and recovery', { skip: databaseUrl ? false : 'needs PostgreSQL: set TEST_DATABASE_URL' }, async (t) => {
  const target = new URL(databaseUrl!)
  const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432))
  t.teardown(() => proxy.close())
  const proxied = new URL(databaseUrl!)
  proxied.hostname = '127.0.0.1'
  proxied.port = String(proxy.port)
  const { app } = await buildTestApp(t, { env: { DATABASE_URL: proxied.toString() } })

  const pair = await registerUser(app)
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'cached as live')
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)

  await proxy.cut()

  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503, '/health/ready: 503 while the database is unreachable')
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, '/health/live: the process itself is fine')

  const requests = {
    me: () => me(app, pair.access_token),
    verify: () => app.inject({ method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(pair.access_token) }),
    login: () => app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email: pair.user.email, password: PASSWORD } }),
    register: () => app.inject({ method: 'POST', url: `${API_PREFIX}/register`, payload: { email: `x-${Date.now()}@example.com`, password: PASSWORD } }),
    refresh: () => app.inject({ method: 'POST', url: `${API_PREFIX}/refresh`, payload: { refresh_token: pair.refresh_token } }),
    logout: () => app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  }
  for (const [name, send] of Object.entries(requests)) {
    const res = await send()
    t.equal(res.statusCode, 503, `${name}: 503`)
    t.match(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Service temporarily unavailable' })
    t.ok(res.headers['retry-after'], `${name}: Retry-After`)
    t.notMatch(res.body, /ECONNREFUSED|at \w|127\.0\.0\.1|select|delete/i, `${name}: no internals in the body`)
  }

  await proxy.restore()
  let back = false
  for (let i = 0; i < 100 && !back; i++) {
    back = (await app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200
    if (!back) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(back, '/health/ready: 200 again without a restart')
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'the session survived the outage')
  const refreshed = await requests.refresh()
  t.equal(refreshed.statusCode, 200, 'the refresh token was not spent by the failed attempt')
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(refreshed.json().access_token) })).statusCode, 204)
  t.equal((await me(app, pair.access_token)).statusCode, 401)
})
