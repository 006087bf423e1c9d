// PostgreSQL up but refusing work (docs/operations.md, "Database outages"): a database closed to
// new connections (ALLOW_CONNECTIONS false, its backends terminated) and a read-only database (as
// after a failover) are outages: 503 with Retry-After and the standard body, never a 500 or a 401,
// and the same app serves again once the database does, without a restart. The refusals come
// from PostgreSQL itself; test/lifecycle/database-outage.test.ts cuts the TCP connection instead.
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { API_PREFIX, PASSWORD, adminQuery, bearer, buildTestApp, me, refresh, registerUser, uniqueEmail } from '../helper.js'

const databaseUrl = process.env.TEST_DATABASE_URL

/** Statements on the database itself run from the shared one: the changed database may refuse them. */
const admin = (statement: string, values?: unknown[]) => adminQuery(databaseUrl!, statement, values)

async function databaseOf(app: App): Promise<string> {
  const { rows } = await sql<{ name: string }>`select current_database() as name`.execute(app.db)
  return rows[0]!.name
}

/** Ends every connection of the app (pool and listener) to `database`. */
async function terminateBackends(database: string): Promise<void> {
  await admin('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [database])
  // pg_terminate_backend only signals; wait until the backends are gone.
  for (let i = 0; i < 100; i++) {
    const [row] = await admin('select count(*)::int as n from pg_stat_activity where datname = $1', [database])
    if (row!.n === 0) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`backends of ${database} still there`)
}

function outageChecks(t: Test, name: string, res: Awaited<ReturnType<App['inject']>>): void {
  t.equal(res.statusCode, 503, `${name}: 503`)
  t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Service temporarily unavailable' }, `${name}: the standard error body`)
  t.equal(res.headers['retry-after'], '5', `${name}: Retry-After`)
}

async function readyAgain(app: App): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if ((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

const login = (app: App, email: string) =>
  app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password: PASSWORD } })
const register = (app: App) =>
  app.inject({ method: 'POST', url: `${API_PREFIX}/register`, payload: { email: uniqueEmail('refused'), password: PASSWORD } })
const logout = (app: App, accessToken: string) =>
  app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(accessToken) })

const skip = databaseUrl ? false : 'needs PostgreSQL: set TEST_DATABASE_URL'

t.test('a database closed to new connections is an outage, and the app recovers', { skip }, async (t) => {
  // SESSION_CACHE_SIZE=0: every Bearer check asks the database (the cache is cold).
  const { app } = await buildTestApp(t, { ownDatabase: true, env: { SESSION_CACHE_SIZE: '0' } })
  const database = await databaseOf(app)
  const pair = await registerUser(app)
  t.teardown(() => admin(`alter database ${database} allow_connections true`))

  await admin(`alter database ${database} allow_connections false`)
  await terminateBackends(database)

  outageChecks(t, 'login', await login(app, pair.user.email))
  outageChecks(t, 'me', await me(app, pair.access_token))
  outageChecks(t, 'refresh', await refresh(app, pair.refresh_token))
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503, '/health/ready: 503')
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /^auth_database_unavailable_total 3$/m, 'each refused request counted as an outage')

  await admin(`alter database ${database} allow_connections true`)
  t.ok(await readyAgain(app), '/health/ready: 200 again, same process')
  t.equal((await login(app, pair.user.email)).statusCode, 200, 'login serves again')
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'the session survived')
  const refreshed = await refresh(app, pair.refresh_token)
  t.equal(refreshed.statusCode, 200, 'the refresh token was not spent by the refused attempt')
  t.equal((await logout(app, refreshed.json().access_token)).statusCode, 204)
})

t.test('a read-only database (as after a failover) is an outage for writes, and the app recovers', { skip }, async (t) => {
  const { app } = await buildTestApp(t, { ownDatabase: true })
  const database = await databaseOf(app)
  const pair = await registerUser(app)
  t.teardown(() => admin(`alter database ${database} reset default_transaction_read_only`))

  await admin(`alter database ${database} set default_transaction_read_only = on`)
  await terminateBackends(database)

  outageChecks(t, 'register', await register(app))
  outageChecks(t, 'login', await login(app, pair.user.email))
  outageChecks(t, 'logout', await logout(app, pair.access_token))
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'reads still work: /me')

  // Writable again, but the connection /me just used is still a read-only session, as the old
  // primary's connections are after a failover: it is closed at its first refusal, never handed
  // out again, so writes serve again after at most one refusal per pooled connection.
  await admin(`alter database ${database} reset default_transaction_read_only`)
  const statuses: number[] = []
  while (statuses.length < 10 && statuses.at(-1) !== 201) statuses.push((await register(app)).statusCode)
  t.equal(statuses.at(-1), 201, `register serves again, same process (${statuses.join(', ')})`)
  t.ok(statuses.slice(0, -1).every((status) => status === 503), 'refused meanwhile with 503 only')
  t.equal((await login(app, pair.user.email)).statusCode, 200, 'login serves again')
  t.equal((await logout(app, pair.access_token)).statusCode, 204, 'logout serves again')
  t.equal((await me(app, pair.access_token)).statusCode, 401, 'and the logout took')
})
