// Through PgBouncer in transaction mode (Debian's 1.18: no named prepared statements, no LISTEN):
// two server processes with DATABASE_URL on a PgBouncer of the test's own, PG_PREPARED_STATEMENTS=off
// and the revocation listener on DATABASE_LISTEN_URL, straight to PostgreSQL. The revocation cases
// hold across the instances, and a burst of concurrent hot-path requests, each transaction on
// whichever server connection PgBouncer hands out, answers without an error.
import t from 'tap'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { pgbouncerBinary, startPgBouncer } from '../support/pgbouncer.js'
import { startServer, type ServerProcess } from '../support/server-process.js'
import { PASSWORD, uniqueEmail, type TokenPairBody } from '../helper.js'

const databaseUrl = process.env.TEST_DATABASE_URL
const skip = !databaseUrl
  ? 'needs PostgreSQL: set TEST_DATABASE_URL'
  : pgbouncerBinary() ? false : 'needs pgbouncer (Debian package pgbouncer; .ci/run installs it)'
const PROPAGATION_BOUND_MS = 5_000

t.test('through PgBouncer in transaction mode', { skip }, async (t) => {
  // Two server connections for two instances of ten pool connections each: every transaction
  // lands on whichever is free, as in production.
  const bouncer = await startPgBouncer(t, databaseUrl!, { poolSize: 2 })
  const env = {
    DATABASE_URL: bouncer.url,
    DATABASE_LISTEN_URL: databaseUrl!,
    PG_PREPARED_STATEMENTS: 'off',
    JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA'),
    REFRESH_REUSE_GRACE: '0'
  }
  const [a, b] = await Promise.all([startServer(env), startServer(env)])
  t.teardown(() => Promise.all([a.stop(), b.stop()]))

  const api = async (server: ServerProcess, path: string, init: { token?: string, body?: unknown } = {}) => {
    const response = await fetch(`${server.url}/api/v1/auth${path}`, {
      method: init.body === undefined && !path.startsWith('/logout') ? 'GET' : 'POST',
      headers: {
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' })
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body)
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined }
  }
  const email = uniqueEmail('pgbouncer')
  t.equal((await api(a, '/register', { body: { email, password: PASSWORD } })).status, 201)
  const login = async (server: ServerProcess) => {
    const answer = await api(server, '/login', { body: { email, password: PASSWORD } })
    if (answer.status !== 200) throw new Error(`login: ${answer.status}`)
    return answer.body as TokenPairBody
  }

  async function refusedOn(server: ServerProcess, token: string): Promise<number | undefined> {
    const started = performance.now()
    while (performance.now() - started < PROPAGATION_BOUND_MS) {
      if ((await api(server, '/verify', { token })).status === 401) return performance.now() - started
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    return undefined
  }

  t.test('a logout on A is refused on B (the listener on its direct connection)', async (t) => {
    const session = await login(a)
    t.equal((await api(b, '/verify', { token: session.access_token })).status, 204, 'live on B (and cached)')
    t.equal((await api(a, '/logout', { token: session.access_token })).status, 204)
    const delay = await refusedOn(b, session.access_token)
    t.ok(delay !== undefined, `refused on B after ${delay?.toFixed(0)} ms`)
  })

  t.test('refresh rotation on B, the old token again on A: theft, the session ends on both', async (t) => {
    const session = await login(a)
    t.equal((await api(a, '/verify', { token: session.access_token })).status, 204)
    const rotated = await api(b, '/refresh', { body: { refresh_token: session.refresh_token } })
    t.equal(rotated.status, 200)
    const reused = await api(a, '/refresh', { body: { refresh_token: session.refresh_token } })
    t.equal(reused.status, 401)
    t.equal(reused.body.code, 'AUTH_REFRESH_TOKEN_REUSED')
    t.equal((await api(b, '/refresh', { body: { refresh_token: rotated.body.refresh_token } })).status, 401, 'the new refresh token died with the session')
    t.ok(await refusedOn(a, rotated.body.access_token) !== undefined, 'its access token refused on A')
    t.ok(await refusedOn(b, rotated.body.access_token) !== undefined, 'and on B')
  })

  t.test('logout with all_devices on B ends the sessions verified on A', async (t) => {
    const sessions = [await login(a), await login(b)]
    for (const session of sessions) t.equal((await api(a, '/verify', { token: session.access_token })).status, 204)
    t.equal((await api(b, '/logout', { token: sessions[1].access_token, body: { all_devices: true } })).status, 204)
    for (const session of sessions) t.ok(await refusedOn(a, session.access_token) !== undefined, 'refused on A')
  })

  t.test('a burst of concurrent hot-path requests on both instances: no error', async (t) => {
    const sessions = await Promise.all(Array.from({ length: 6 }, (_, i) => login(i % 2 ? a : b)))
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => {
      const session = sessions[i % sessions.length]
      return api(i % 2 ? a : b, i % 3 ? '/verify' : '/me', { token: session.access_token })
    }))
    const statuses = [...new Set(answers.map((answer) => answer.status))].sort()
    t.same(statuses, [200, 204], `only 200 (/me) and 204 (/verify): ${statuses}`)
    const rotations = await Promise.all(sessions.map((session, i) => api(i % 2 ? b : a, '/refresh', { body: { refresh_token: session.refresh_token } })))
    t.same(rotations.map((answer) => answer.status), sessions.map(() => 200), 'every rotation through PgBouncer')
  })

  t.test('PG_PREPARED_STATEMENTS left on: detected, a few 503s, never a 500, then off', async (t) => {
    const c = await startServer({ ...env, PG_PREPARED_STATEMENTS: 'on', LOG_LEVEL: 'error' })
    t.teardown(() => c.stop())
    const sessions = await Promise.all(Array.from({ length: 6 }, () => login(a)))
    const burst = () => Promise.all(Array.from({ length: 300 }, (_, i) =>
      api(c, i % 3 ? '/verify' : '/me', { token: sessions[i % sessions.length].access_token })))
    const first = (await burst()).map((answer) => answer.status)
    t.same([...new Set(first)].filter((status) => ![200, 204, 503].includes(status)), [], `200, 204 or 503 only: ${[...new Set(first)]}`)
    t.match(c.output(), /named prepared statements failed: DATABASE_URL reaches PostgreSQL through a pooler/, 'the log says what to set')
    const second = (await burst()).map((answer) => answer.status)
    t.same([...new Set(second)].sort(), [200, 204], 'then every request answers')
  })
})
