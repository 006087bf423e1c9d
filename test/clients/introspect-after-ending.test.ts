// Introspection after each way a session ends (the contract's "POST /introspect": "a token of a
// session that was logged out" is `{ "active": false }`): the ended session's access and refresh
// tokens go inactive at once, although both were just introspected as active (so cached as live),
// while the user's other sessions and other users stay active. On PostgreSQL also across two
// instances: a logout on A reaches B's cache through the revocation feed.
import t from 'tap'
import type { Test } from 'tap'
import type { App } from '../../src/app.js'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import {
  API_PREFIX,
  PASSWORD,
  bearer,
  buildTestApp,
  decodeJwt,
  introspectWith,
  loginUser,
  machineToken,
  refresh,
  registerUser,
  testClient,
  type TokenPairBody
} from '../helper.js'

const introspector = testClient('introspect')
const supportTool = testClient('sessions:admin')
const { app, clock } = await buildTestApp(t, { clients: [introspector, supportTool] })
const adminToken = await machineToken(app, supportTool)

const sidOf = (pair: TokenPairBody): string => decodeJwt(pair.access_token).payload.sid

/** Both tokens of `pair` introspect as active (access_token and refresh_token, this session's). */
async function assertActive(t: Test, pair: TokenPairBody, label: string, target: App = app) {
  const access = await introspectWith(target, introspector, pair.access_token)
  t.equal(access.statusCode, 200)
  t.match(access.json(), { active: true, token_type: 'access_token', sid: sidOf(pair) }, `${label}: access token active`)
  const refreshed = await introspectWith(target, introspector, pair.refresh_token)
  t.equal(refreshed.statusCode, 200)
  t.match(refreshed.json(), { active: true, token_type: 'refresh_token', sid: sidOf(pair) }, `${label}: refresh token active`)
}

/** Both tokens of `pair` introspect as exactly `{ "active": false }`, with and without a hint. */
async function assertEnded(t: Test, pair: TokenPairBody, label: string, target: App = app) {
  for (const [kind, token] of [['access', pair.access_token], ['refresh', pair.refresh_token]] as const) {
    for (const hint of [undefined, `${kind}_token`]) {
      const res = await introspectWith(target, introspector, token, hint)
      t.equal(res.statusCode, 200)
      t.strictSame(res.json(), { active: false }, `${label}: ${kind} token inactive${hint ? ` (hint ${hint})` : ''}`)
    }
  }
}

/** A user with `n` sessions (a registration and n - 1 logins), all introspected active first. */
async function userWithSessions(t: Test, n: number) {
  const first = await registerUser(app)
  const sessions = [first]
  for (let i = 1; i < n; i++) sessions.push(await loginUser(app, first.user.email))
  for (const [i, session] of sessions.entries()) await assertActive(t, session, `before: session ${i}`)
  return { sessions, userId: first.user.id, email: first.user.email }
}

/** Another user, active before and expected active after: nothing spills over. */
async function bystander(t: Test) {
  const pair = await registerUser(app)
  await assertActive(t, pair, 'bystander before')
  return pair
}

function logout(accessToken: string, payload?: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(accessToken), ...(payload ? { payload } : {}) })
}

function admin(method: 'DELETE' | 'POST', path: string) {
  return app.inject({ method, url: `${API_PREFIX}/admin${path}`, headers: bearer(adminToken) })
}

t.test('logout of the current session', async (t) => {
  const { sessions: [a, b] } = await userWithSessions(t, 2)
  const other = await bystander(t)
  t.equal((await logout(a.access_token)).statusCode, 204)
  await assertEnded(t, a, 'logged out')
  await assertActive(t, b, 'the other session')
  await assertActive(t, other, 'bystander')
})

t.test('logout with refresh_token (another session of the user)', async (t) => {
  const { sessions: [a, b] } = await userWithSessions(t, 2)
  t.equal((await logout(a.access_token, { refresh_token: b.refresh_token })).statusCode, 204)
  await assertEnded(t, b, 'the session of that refresh token')
  await assertActive(t, a, 'the calling session')
})

t.test('logout with all_devices', async (t) => {
  const { sessions } = await userWithSessions(t, 3)
  const other = await bystander(t)
  t.equal((await logout(sessions[0].access_token, { all_devices: true })).statusCode, 204)
  for (const [i, session] of sessions.entries()) await assertEnded(t, session, `session ${i}`)
  await assertActive(t, other, 'bystander')
})

t.test('logout with all_devices and keep_current', async (t) => {
  const { sessions: [a, b, c] } = await userWithSessions(t, 3)
  t.equal((await logout(a.access_token, { all_devices: true, keep_current: true })).statusCode, 204)
  await assertEnded(t, b, 'session b')
  await assertEnded(t, c, 'session c')
  await assertActive(t, a, 'the calling session is kept')
})

t.test('DELETE /sessions/:id', async (t) => {
  const { sessions: [a, b] } = await userWithSessions(t, 2)
  const res = await app.inject({ method: 'DELETE', url: `${API_PREFIX}/sessions/${sidOf(b)}`, headers: bearer(a.access_token) })
  t.equal(res.statusCode, 204)
  await assertEnded(t, b, 'the deleted session')
  await assertActive(t, a, 'the calling session')
})

t.test('POST /revoke of a refresh token', async (t) => {
  const { sessions: [a, b] } = await userWithSessions(t, 2)
  const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/revoke`, payload: { token: b.refresh_token } })
  t.equal(res.statusCode, 200)
  await assertEnded(t, b, 'the revoked session')
  await assertActive(t, a, 'the other session')
})

t.test('password change ends the other sessions', async (t) => {
  const { sessions: [a, b, c] } = await userWithSessions(t, 3)
  const other = await bystander(t)
  const res = await app.inject({
    method: 'POST',
    url: `${API_PREFIX}/password`,
    headers: bearer(a.access_token),
    payload: { current_password: PASSWORD, new_password: `${PASSWORD} and more` }
  })
  t.equal(res.statusCode, 204)
  await assertEnded(t, b, 'session b')
  await assertEnded(t, c, 'session c')
  await assertActive(t, a, 'the session that changed the password')
  await assertActive(t, other, 'bystander')
})

t.test('refresh-token theft detection (an old refresh token reused after the grace window)', async (t) => {
  const { sessions: [a, b] } = await userWithSessions(t, 2)
  const rotated = await refresh(app, a.refresh_token)
  t.equal(rotated.statusCode, 200)
  const current: TokenPairBody = rotated.json()
  await assertActive(t, current, 'the rotated pair')
  clock.advance(11) // past REFRESH_REUSE_GRACE (default 10 s)
  const reuse = await refresh(app, a.refresh_token)
  t.equal(reuse.statusCode, 401, 'the reuse is refused')
  t.match(reuse.json(), { code: 'AUTH_REFRESH_TOKEN_REUSED' })
  await assertEnded(t, current, 'the current pair of the stolen session')
  await assertEnded(t, a, 'the first pair of the stolen session')
  await assertActive(t, b, 'the other session')
})

t.test('admin DELETE /admin/users/:id/sessions', async (t) => {
  const { sessions, userId } = await userWithSessions(t, 3)
  const other = await bystander(t)
  t.equal((await admin('DELETE', `/users/${userId}/sessions`)).statusCode, 204)
  for (const [i, session] of sessions.entries()) await assertEnded(t, session, `session ${i}`)
  await assertActive(t, other, 'bystander')
})

t.test('admin DELETE /admin/users/:id/sessions/:sid', async (t) => {
  const { sessions: [a, b], userId } = await userWithSessions(t, 2)
  t.equal((await admin('DELETE', `/users/${userId}/sessions/${sidOf(b)}`)).statusCode, 204)
  await assertEnded(t, b, 'the ended session')
  await assertActive(t, a, 'the other session')
})

t.test('admin disable ends every session; after enable the old tokens stay inactive', async (t) => {
  const { sessions, userId, email } = await userWithSessions(t, 2)
  const other = await bystander(t)
  t.equal((await admin('POST', `/users/${userId}/disable`)).statusCode, 204)
  for (const [i, session] of sessions.entries()) await assertEnded(t, session, `disabled: session ${i}`)
  await assertActive(t, other, 'bystander')
  const refused = await app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password: PASSWORD } })
  t.equal(refused.statusCode, 401, 'login refused while disabled')

  t.equal((await admin('POST', `/users/${userId}/enable`)).statusCode, 204)
  for (const [i, session] of sessions.entries()) await assertEnded(t, session, `enabled again: old session ${i}`)
  t.equal((await refresh(app, sessions[0].refresh_token)).statusCode, 401, 'an old refresh token does not come back to life')
  const fresh = await loginUser(app, email)
  await assertActive(t, fresh, 'a new login after enable')
})

t.test('across two instances on one PostgreSQL', { skip: process.env.TEST_DATABASE_URL ? false : 'needs PostgreSQL: set TEST_DATABASE_URL (on PGlite each app has its own database)' }, async (t) => {
  // Same database, same signing key, same clients file: two instances of one deployment.
  const env = { JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA') }
  const clients = [introspector, supportTool]
  const [{ app: a }, { app: b }] = await Promise.all([buildTestApp(t, { env, clients }), buildTestApp(t, { env, clients })])
  const POLL_MS = 20
  const BOUND_MS = 5_000
  // B trusts its cache only once its listener is connected (asynchronously, after start-up);
  // before that it asks the database every time and the test would prove nothing.
  for (const started = performance.now(); !b.sessionLiveness.feedHealthy && performance.now() - started < 10_000;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  t.ok(b.sessionLiveness.feedHealthy, "B's revocation feed is up")
  /** Polls B every 20 ms until `token` is inactive there; the milliseconds it took, or undefined. */
  async function inactiveOnB(token: string): Promise<number | undefined> {
    const started = performance.now()
    for (;;) {
      const res = await introspectWith(b, introspector, token)
      if (res.statusCode === 200 && res.body === '{"active":false}') return performance.now() - started
      if (performance.now() - started > BOUND_MS) return undefined
      await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    }
  }

  const first = await registerUser(a)
  const second = await loginUser(a, first.user.email)
  for (const pair of [first, second]) {
    await assertActive(t, pair, 'live on B', b)
    t.equal(b.sessionLiveness.cached(sidOf(pair), first.user.id), true, 'and cached on B as live')
  }

  t.equal((await a.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(first.access_token) })).statusCode, 204, 'logout on A')
  const delay = await inactiveOnB(first.access_token)
  t.comment(`the logout on A reached B's introspection in ${delay === undefined ? 'NEVER' : `${delay.toFixed(1)} ms`}`)
  t.not(delay, undefined, `B answers active: false within ${BOUND_MS} ms`)
  await assertEnded(t, first, 'on B', b)
  await assertEnded(t, first, 'on A', a)
  await assertActive(t, second, 'the other session, on B', b)

  // The same for an admin ending on A of a session B has cached as live.
  const byAdmin = await machineToken(a, supportTool)
  const ended = await a.inject({ method: 'DELETE', url: `${API_PREFIX}/admin/users/${first.user.id}/sessions`, headers: bearer(byAdmin) })
  t.equal(ended.statusCode, 204, 'admin ends the remaining session on A')
  t.not(await inactiveOnB(second.access_token), undefined, 'inactive on B within the bound')
  await assertEnded(t, second, 'admin-ended, on B', b)
})
