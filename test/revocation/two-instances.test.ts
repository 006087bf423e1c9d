// Two real server processes on one PostgreSQL. A logout on A reaches B through
// LISTEN/NOTIFY, also after B's listener connection was killed. The bound is for correctness (the
// revocation arrived), not a speed target; the delay printed here polls every 5 ms, the window
// itself is measured by propagation-window.test.ts.
import pg from 'pg'
import t from 'tap'
import { listenerApplicationName } from '../../src/db/revocation-feed.js'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { startServer, type ServerProcess } from '../support/server-process.js'
import { PASSWORD, uniqueEmail, type TokenPairBody } from '../helper.js'

const databaseUrl = process.env.TEST_DATABASE_URL
const PROPAGATION_BOUND_MS = 5_000

t.test('revocation across instances', { skip: databaseUrl ? false : 'needs PostgreSQL: set TEST_DATABASE_URL (PGlite is one process)' }, async (t) => {
  const env = { DATABASE_URL: databaseUrl!, JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA') }
  const [a, b] = await Promise.all([startServer(env), startServer(env)])
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  t.teardown(async () => {
    await admin.end()
    await Promise.all([a.stop(), b.stop()])
  })

  const api = (server: ServerProcess, path: string, init: { method?: string, token?: string, body?: unknown } = {}) =>
    fetch(`${server.url}/api/v1/auth${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' })
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body)
    })

  async function listenerPid(server: ServerProcess): Promise<number | undefined> {
    const { rows } = await admin.query('select pid from pg_stat_activity where application_name = $1', [listenerApplicationName(server.pid)])
    return rows[0]?.pid
  }

  async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<number | undefined> {
    const started = performance.now()
    while (performance.now() - started < timeoutMs) {
      if (await check()) return performance.now() - started
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return undefined
  }

  const email = uniqueEmail('two-instances')
  const registered = await api(a, '/register', { body: { email, password: PASSWORD } })
  t.equal(registered.status, 201)
  const login = async (server: ServerProcess) =>
    (await (await api(server, '/login', { body: { email, password: PASSWORD } })).json()) as TokenPairBody

  /** Logs a fresh session in on `from`, makes `to` cache it as live, logs it out on `from`, and measures. */
  async function logoutPropagates(from: ServerProcess, to: ServerProcess, label: string) {
    const session = await login(from)
    t.equal((await api(to, '/me', { token: session.access_token })).status, 200, `${label}: live on the other instance`)
    t.equal((await api(to, '/verify', { token: session.access_token })).status, 204)
    t.equal((await api(from, '/logout', { method: 'POST', token: session.access_token })).status, 204, `${label}: logout`)
    const delay = await waitFor(async () => (await api(to, '/me', { token: session.access_token })).status === 401, PROPAGATION_BOUND_MS)
    t.comment(`${label}: logout reached the other instance in ${delay === undefined ? 'NEVER' : `${delay.toFixed(1)} ms`}`)
    t.not(delay, undefined, `${label}: /me on the other instance answers 401 within ${PROPAGATION_BOUND_MS} ms`)
    t.equal((await api(to, '/verify', { token: session.access_token })).status, 401, `${label}: /verify too`)
    t.equal((await api(to, '/refresh', { body: { refresh_token: session.refresh_token } })).status, 401, `${label}: and /refresh`)
  }

  t.ok(await waitFor(async () => (await listenerPid(b)) !== undefined, 10_000), "B's listener is connected")
  await logoutPropagates(a, b, 'A to B')
  await logoutPropagates(b, a, 'B to A')

  // Kill B's notification connection: meanwhile B must check the database, never trust its cache.
  const killed = await admin.query('select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = $1', [
    listenerApplicationName(b.pid)
  ])
  t.equal(killed.rowCount, 1, "B's listener terminated")
  await logoutPropagates(a, b, 'A to B, listener just killed')

  const reconnected = await waitFor(async () => (await listenerPid(b)) !== undefined, 15_000)
  t.not(reconnected, undefined, 'B reconnects its listener with back-off')
  t.comment(`B's listener reconnected after ${reconnected?.toFixed(0)} ms`)
  await logoutPropagates(a, b, 'A to B, after reconnect')

  // All devices on A: every session of the user, cached live on B, dies on B.
  const sessions = [await login(a), await login(b), await login(b)]
  for (const session of sessions) t.equal((await api(b, '/me', { token: session.access_token })).status, 200)
  t.equal((await api(a, '/logout', { token: sessions[0].access_token, body: { all_devices: true } })).status, 204)
  for (const session of sessions) {
    const delay = await waitFor(async () => (await api(b, '/me', { token: session.access_token })).status === 401, PROPAGATION_BOUND_MS)
    t.not(delay, undefined, 'all devices: dead on B')
  }

  t.equal(await a.stop(), 0, 'A shuts down cleanly on SIGTERM')
  t.equal(await b.stop(), 0, 'B shuts down cleanly on SIGTERM')
})
