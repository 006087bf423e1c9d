// The admin endpoints (docs/api.md, "Admin endpoints"; scope `sessions:admin`): every success and
// error case, through app.inject() on a real database (PGlite, or PostgreSQL with
// TEST_DATABASE_URL). Every call must land in auth_events with the machine client as its actor,
// and every session ended here must die at once: /me, /verify and /refresh all answer 401.
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import {
  API_PREFIX,
  PASSWORD,
  bearer,
  buildTestApp,
  countSessions,
  decodeJwt,
  errorShape,
  loginUser,
  machineToken,
  me,
  refresh,
  registerUser,
  testClient,
  uniqueEmail,
  type TokenPairBody
} from '../helper.js'

const admin = testClient('sessions:admin')
const introspector = testClient('introspect')
const both = testClient('introspect sessions:admin')
const { app, clock } = await buildTestApp(t, { clients: [admin, introspector, both] })
const adminToken = await machineToken(app, admin)
const base = `${API_PREFIX}/admin`
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const NOT_UUIDS = ['not-a-uuid', '1', `${randomUUID()}x`, "1' OR '1'='1"]

const sidOf = (pair: TokenPairBody): string => decodeJwt(pair.access_token).payload.sid

/** The service's error body, with its code. */
const errorBody = (statusCode: number, code: string) => ({ ...errorShape(statusCode), code })

type Method = 'GET' | 'POST' | 'DELETE'

/** An admin call, with the admin's machine token unless told otherwise (null: no Authorization). */
function call(method: Method, path: string, token: string | null = adminToken) {
  return app.inject({ method, url: `${base}${path}`, headers: token === null ? {} : bearer(token) })
}

const lookup = (email: string) => call('GET', `/users?email=${encodeURIComponent(email)}`)
const listOf = (userId: string) => call('GET', `/users/${userId}/sessions`)
const endAll = (userId: string) => call('DELETE', `/users/${userId}/sessions`)
const endOne = (userId: string, sessionId: string) => call('DELETE', `/users/${userId}/sessions/${sessionId}`)
const disable = (userId: string) => call('POST', `/users/${userId}/disable`)
const enable = (userId: string) => call('POST', `/users/${userId}/enable`)

function verify(accessToken: string) {
  return app.inject({ method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(accessToken) })
}

function loginAttempt(email: string, password: string) {
  return app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password } })
}

/** Logs in from a device (User-Agent), one clock second after the previous session. */
async function loginFrom(email: string, userAgent: string): Promise<TokenPairBody> {
  clock.advance(1)
  const res = await app.inject({
    method: 'POST',
    url: `${API_PREFIX}/login`,
    headers: { 'user-agent': userAgent },
    remoteAddress: '192.0.2.44',
    payload: { email, password: PASSWORD }
  })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode}`)
  return res.json()
}

/** A user with three sessions (registration, laptop, phone), each one checked live (and so cached). */
async function userWithSessions() {
  const registered = await registerUser(app)
  const laptop = await loginFrom(registered.user.email, 'Laptop/1.0')
  const phone = await loginFrom(registered.user.email, 'Phone/2.0')
  const pairs = [registered, laptop, phone]
  for (const pair of pairs) if ((await me(app, pair.access_token)).statusCode !== 200) throw new Error('session not live')
  return { user: registered.user, registered, laptop, phone, pairs }
}

interface AuditRow {
  kind: string
  user_id: string | null
  session_id: string | null
  actor_client_id: string | null
  detail: Record<string, unknown> | null
}

/** The audit rows of `userId` (or, with null, of no user), oldest first. */
async function auditOf(userId: string | null, kinds?: string[]): Promise<AuditRow[]> {
  let query = app.db.selectFrom('auth_events').select(['kind', 'user_id', 'session_id', 'actor_client_id', 'detail'])
  query = userId === null ? query.where('user_id', 'is', null) : query.where('user_id', '=', userId)
  if (kinds) query = query.where('kind', 'in', kinds as never[])
  const rows = await query.orderBy('id').execute()
  return rows.map((row) => ({ ...row, detail: typeof row.detail === 'string' ? JSON.parse(row.detail) : row.detail }))
}

/** Every token of these pairs is dead: access tokens at /me and /verify, refresh tokens at /refresh. */
async function assertDead(t: Test, pairs: TokenPairBody[], label: string) {
  for (const [i, pair] of pairs.entries()) {
    const meRes = await me(app, pair.access_token)
    t.equal(meRes.statusCode, 401, `${label}: access token ${i} is 401 at /me`)
    t.equal(meRes.headers['www-authenticate'], 'Bearer error="invalid_token"')
    t.equal((await verify(pair.access_token)).statusCode, 401, `${label}: access token ${i} is 401 at /verify`)
    const refreshRes = await refresh(app, pair.refresh_token)
    t.equal(refreshRes.statusCode, 401, `${label}: refresh token ${i} is 401 at /refresh`)
    t.match(refreshRes.json(), errorShape(401))
  }
}

async function assertLive(t: Test, pair: TokenPairBody, label: string) {
  t.equal((await me(app, pair.access_token)).statusCode, 200, `${label}: /me 200`)
  t.equal((await verify(pair.access_token)).statusCode, 204, `${label}: /verify 204`)
}

async function isDisabled(userId: string): Promise<boolean> {
  const row = await app.db.selectFrom('users').select('disabled').where('id', '=', userId).executeTakeFirstOrThrow()
  return row.disabled
}

t.test('authentication: 401 without a machine token, 403 without the scope, nothing done', async (t) => {
  const { user, laptop, pairs } = await userWithSessions()
  const userToken = laptop.access_token
  const introspectToken = await machineToken(app, introspector)
  const narrowedToken = await machineToken(app, both, 'introspect')
  const routes: Array<[Method, string]> = [
    ['GET', `/users?email=${encodeURIComponent(user.email)}`],
    ['GET', `/users/${user.id}/sessions`],
    ['DELETE', `/users/${user.id}/sessions`],
    ['DELETE', `/users/${user.id}/sessions/${sidOf(laptop)}`],
    ['POST', `/users/${user.id}/disable`],
    ['POST', `/users/${user.id}/enable`]
  ]
  for (const [method, path] of routes) {
    const label = `${method} ${path.replace(/\?.*/, '')}`
    const missing = await call(method, path, null)
    t.equal(missing.statusCode, 401, `${label}: no token`)
    t.equal(missing.headers['www-authenticate'], 'Bearer', `${label}: bare Bearer challenge`)
    t.match(missing.json(), errorBody(401, 'AUTH_MISSING_TOKEN'))

    for (const [kind, token] of [['a user access token', userToken], ['a user refresh token', laptop.refresh_token], ['garbage', 'garbage']]) {
      const res = await call(method, path, token)
      t.equal(res.statusCode, 401, `${label}: ${kind}`)
      t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', `${label}: ${kind} is invalid_token`)
      t.match(res.json(), errorBody(401, 'AUTH_INVALID_TOKEN'))
    }

    for (const [kind, token] of [['a client with only introspect', introspectToken], ['a token narrowed to introspect', narrowedToken]]) {
      const res = await call(method, path, token)
      t.equal(res.statusCode, 403, `${label}: ${kind}`)
      t.equal(res.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="sessions:admin"', `${label}: ${kind}`)
      t.match(res.json(), errorBody(403, 'AUTH_INSUFFICIENT_SCOPE'))
    }
  }
  t.equal(await countSessions(app, user.id), 3, 'no session ended')
  t.equal(await isDisabled(user.id), false, 'not disabled')
  for (const pair of pairs) await assertLive(t, pair, 'still live')
  const audited = (await auditOf(user.id)).filter((row) => row.actor_client_id !== null)
  t.same(audited, [], 'a refused call is no admin action')

  const full = await machineToken(app, both)
  t.equal((await call('GET', `/users/${user.id}/sessions`, full)).statusCode, 200, 'the same client with the scope in its token is let in')
})

t.test('GET /users?email=: the user, exactly; emails compare case-insensitively; audited', async (t) => {
  const email = uniqueEmail('lookup')
  const registered = await app.inject({ method: 'POST', url: `${API_PREFIX}/register`, payload: { email, password: PASSWORD, display_name: 'Ada' } })
  t.equal(registered.statusCode, 201)
  const user = registered.json().user

  const res = await lookup(email)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['created_at', 'disabled', 'display_name', 'email', 'email_verified', 'id'], 'exactly these members')
  t.same(body, { id: user.id, email, display_name: 'Ada', email_verified: false, created_at: user.created_at, disabled: false })
  t.match(body, { id: UUID, created_at: ISO })
  t.notOk(res.body.includes('password') || res.body.includes('hash'), 'no password material')

  const upper = await lookup(email.toUpperCase())
  t.equal(upper.statusCode, 200, 'upper case finds the same user')
  t.same(upper.json(), body)

  const withoutName = await registerUser(app)
  t.same((await lookup(withoutName.user.email)).json(), { ...withoutName.user, disabled: false }, 'display_name null')

  const lookups = await auditOf(user.id, ['admin_user_lookup'])
  t.equal(lookups.length, 2)
  for (const row of lookups) {
    t.match(row, { kind: 'admin_user_lookup', user_id: user.id, session_id: null, actor_client_id: admin.clientId })
    t.match(row.detail, { email, found: true })
  }
})

t.test('GET /users?email=: 404 for an unknown email, audited too', async (t) => {
  const email = uniqueEmail('nobody')
  const res = await lookup(email)
  t.equal(res.statusCode, 404)
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.match(res.json(), errorBody(404, 'AUTH_USER_NOT_FOUND'))
  const rows = (await auditOf(null, ['admin_user_lookup'])).filter((row) => row.detail?.email === email)
  t.equal(rows.length, 1, 'the failed lookup is in the audit trail')
  t.match(rows[0], { user_id: null, session_id: null, actor_client_id: admin.clientId, detail: { email, found: false } })
})

t.test('GET /users: 400 for a missing or invalid email or an unknown parameter', async (t) => {
  const email = uniqueEmail('bad-query')
  await registerUser(app, email)
  const lookups = async () => (await auditOf(null, ['admin_user_lookup'])).filter((row) => row.actor_client_id === admin.clientId).length
  const before = await lookups()
  const queries = [
    '',
    '?email=',
    '?email=not-an-email',
    `?email=${'a'.repeat(250)}%40example.com`,
    `?email=${encodeURIComponent(email)}&extra=1`,
    `?mail=${encodeURIComponent(email)}`,
    `?email=${encodeURIComponent(email)}&email=${encodeURIComponent(email)}`
  ]
  for (const query of queries) {
    const res = await call('GET', `/users${query}`)
    t.equal(res.statusCode, 400, `GET /users${query}`)
    t.match(res.json(), errorShape(400), query)
    t.type(res.json().code, 'string', `${query}: with a code`)
  }
  t.equal(await lookups(), before, 'a malformed request looks nobody up')
})

t.test('GET /users/:id/sessions: live sessions as GET /sessions shows them (no current), newest first', async (t) => {
  const { user, registered, laptop, phone } = await userWithSessions()
  const stranger = await registerUser(app)

  const res = await listOf(user.id)
  t.equal(res.statusCode, 200)
  const sessions = res.json() as Array<Record<string, unknown>>
  t.same(sessions.map((session) => session.id), [sidOf(phone), sidOf(laptop), sidOf(registered)], 'newest first')
  for (const session of sessions) {
    t.same(Object.keys(session).sort(), ['created_at', 'expires_at', 'id', 'ip', 'last_used_at', 'user_agent'], 'no current')
    t.match(session, { id: UUID, created_at: ISO, last_used_at: ISO, expires_at: ISO })
  }
  t.match(sessions[0], { user_agent: 'Phone/2.0', ip: '192.0.2.44' })
  t.match(sessions[1], { user_agent: 'Laptop/1.0', ip: '192.0.2.44' })
  t.notOk(res.body.includes(sidOf(stranger)), "another user's session is not listed")
  t.notOk(res.body.includes('hash'), 'no token material')

  const own = await app.inject({ method: 'GET', url: `${API_PREFIX}/sessions`, headers: bearer(phone.access_token) })
  const ownSorted = (own.json() as Array<Record<string, unknown>>)
    .map(({ current: _current, ...rest }) => rest)
    .sort((a, b) => String(a.id).localeCompare(String(b.id)))
  t.same([...sessions].sort((a, b) => String(a.id).localeCompare(String(b.id))), ownSorted, 'the same sessions as GET /sessions')

  // Only live sessions: a logged-out one is gone, an expired one (still in the table) is not listed.
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(registered.access_token) })).statusCode, 204)
  await app.db.updateTable('user_sessions').set({ expires_at: new Date(Date.now() - 60_000) }).where('id', '=', sidOf(laptop)).execute()
  t.equal(await countSessions(app, user.id), 2, 'the expired session is still stored')
  const live = (await listOf(user.id)).json() as Array<{ id: string }>
  t.same(live.map((session) => session.id), [sidOf(phone)], 'only the live session')

  const listed = await auditOf(user.id, ['admin_sessions_listed'])
  t.equal(listed.length, 2)
  t.match(listed[0], { user_id: user.id, session_id: null, actor_client_id: admin.clientId, detail: { sessions: 3 } })
  t.match(listed[1], { actor_client_id: admin.clientId, detail: { sessions: 1 } })
})

t.test('GET /users/:id/sessions: [] for a user without sessions, 404 for an unknown user or a non-UUID id', async (t) => {
  const registered = await registerUser(app)
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(registered.access_token) })).statusCode, 204)
  const empty = await listOf(registered.user.id)
  t.equal(empty.statusCode, 200)
  t.same(empty.json(), [])

  const unknown = await listOf(randomUUID())
  t.equal(unknown.statusCode, 404)
  t.match(unknown.json(), errorBody(404, 'AUTH_USER_NOT_FOUND'))
  for (const id of NOT_UUIDS) {
    const res = await listOf(encodeURIComponent(id))
    t.equal(res.statusCode, 404, id)
    t.match(res.json(), errorBody(404, 'AUTH_USER_NOT_FOUND'), id)
  }
  t.equal((await listOf(registered.user.id.toUpperCase())).statusCode, 200, 'an upper-case UUID names the same user')
})

t.test('DELETE /users/:id/sessions: 204, every session ends at once, nobody else\'s; audited per session', async (t) => {
  const { user, pairs } = await userWithSessions()
  const stranger = await registerUser(app)
  await assertLive(t, stranger, 'stranger before')

  const res = await endAll(user.id)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal(await countSessions(app, user.id), 0)
  await assertDead(t, pairs, 'ended by the admin')

  await assertLive(t, stranger, "another user's session")
  t.equal(await countSessions(app, stranger.user.id), 1)
  t.equal((await refresh(app, stranger.refresh_token)).statusCode, 200, "another user's refresh token still works")

  const logouts = await auditOf(user.id, ['logout'])
  t.same(logouts.map((row) => row.session_id).sort(), pairs.map(sidOf).sort(), 'one logout row per ended session')
  for (const row of logouts) t.match(row, { actor_client_id: admin.clientId, detail: { scope: 'admin_all' } })

  t.equal(await isDisabled(user.id), false, 'ending sessions does not disable')
  const again = await loginUser(app, user.email)
  await assertLive(t, again, 'the user can log in again')

  const twice = await endAll(user.id)
  t.equal(twice.statusCode, 204, 'and again: 204')
  await assertDead(t, [again], 'the new session ended too')
  t.equal((await endAll(user.id)).statusCode, 204, 'a user without sessions: 204')
  t.equal((await auditOf(user.id, ['logout'])).length, 4, 'nothing ended, nothing audited')
})

t.test('DELETE /users/:id/sessions: 404 for an unknown user or a non-UUID id', async (t) => {
  for (const id of [randomUUID(), ...NOT_UUIDS]) {
    const res = await endAll(encodeURIComponent(id))
    t.equal(res.statusCode, 404, id)
    t.match(res.json(), errorBody(404, 'AUTH_USER_NOT_FOUND'), id)
  }
})

t.test('DELETE /users/:id/sessions/:sid: 204, only that session ends; audited', async (t) => {
  const { user, registered, laptop, phone } = await userWithSessions()
  const res = await endOne(user.id, sidOf(laptop))
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  await assertDead(t, [laptop], 'the ended session')
  await assertLive(t, registered, 'the registration session')
  await assertLive(t, phone, 'the phone')
  t.equal(await countSessions(app, user.id), 2)

  const logouts = await auditOf(user.id, ['logout'])
  t.equal(logouts.length, 1)
  t.match(logouts[0], { session_id: sidOf(laptop), actor_client_id: admin.clientId, detail: { scope: 'admin_one' } })

  const again = await endOne(user.id, sidOf(laptop))
  t.equal(again.statusCode, 404, 'a session already ended is not found')
  t.match(again.json(), errorBody(404, 'AUTH_SESSION_NOT_FOUND'))
  t.equal(await countSessions(app, user.id), 2)
})

t.test("DELETE /users/:id/sessions/:sid: 404 for another user's session, an unknown or non-UUID sid, an unknown user", async (t) => {
  const alice = await registerUser(app)
  const bob = await registerUser(app)

  const foreign = await endOne(alice.user.id, sidOf(bob))
  t.equal(foreign.statusCode, 404, "bob's session is not alice's")
  t.match(foreign.json(), errorBody(404, 'AUTH_SESSION_NOT_FOUND'))
  const unknown = await endOne(alice.user.id, randomUUID())
  t.equal(unknown.statusCode, 404)
  t.same(unknown.json(), foreign.json(), 'indistinguishable from a session that does not exist')
  for (const sid of NOT_UUIDS) {
    const res = await endOne(alice.user.id, encodeURIComponent(sid))
    t.equal(res.statusCode, 404, sid)
    t.match(res.json(), errorBody(404, 'AUTH_SESSION_NOT_FOUND'), sid)
  }
  for (const id of [randomUUID(), 'not-a-uuid']) {
    const res = await endOne(id, sidOf(bob))
    t.equal(res.statusCode, 404, `unknown user ${id}`)
    t.match(res.json(), errorBody(404, 'AUTH_USER_NOT_FOUND'))
  }
  await assertLive(t, bob, "bob's session")
  await assertLive(t, alice, "alice's session")
  t.equal(await countSessions(app, bob.user.id), 1)
  t.equal(await countSessions(app, alice.user.id), 1)
  t.same(await auditOf(bob.user.id, ['logout']), [], 'nothing ended, nothing audited')
  t.same(await auditOf(alice.user.id, ['logout']), [])
})

t.test('POST /users/:id/disable: every session ends at once, login is refused exactly as a wrong password, refresh too', async (t) => {
  const { user, pairs } = await userWithSessions()
  const stranger = await registerUser(app)
  const wrongBefore = await loginAttempt(user.email, 'not the password at all')
  t.equal(wrongBefore.statusCode, 401)

  const res = await disable(user.id)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal(await countSessions(app, user.id), 0, 'no session left')
  await assertDead(t, pairs, 'after disable')
  await assertLive(t, stranger, 'another user')

  const refused = await loginAttempt(user.email, PASSWORD)
  const wrong = await loginAttempt(user.email, 'not the password at all')
  const wrongOtherAccount = await loginAttempt(stranger.user.email, 'not the password at all')
  t.equal(refused.statusCode, wrong.statusCode, 'the same status as a wrong password')
  t.equal(refused.statusCode, 401)
  t.same(refused.json(), wrong.json(), 'the same body')
  t.same(refused.json(), wrongBefore.json(), 'as before the disable')
  t.match(refused.json(), errorBody(401, 'AUTH_INVALID_CREDENTIALS'))
  const headers = (res: typeof refused) => {
    const { date: _date, 'x-request-id': _id, ...rest } = res.headers
    return rest
  }
  t.same(headers(refused), headers(wrong), 'the same headers')
  t.same(headers(refused), headers(wrongOtherAccount), 'as any wrong password')
  t.equal(refused.headers['www-authenticate'], wrong.headers['www-authenticate'], 'the same WWW-Authenticate (or none)')
  t.equal(await countSessions(app, user.id), 0, 'the refused login opened no session')

  const shown = await lookup(user.email)
  t.equal(shown.statusCode, 200)
  t.same(shown.json(), { ...user, display_name: null, disabled: true }, 'GET /users shows disabled: true')
  t.equal(await isDisabled(user.id), true)

  const again = await disable(user.id)
  t.equal(again.statusCode, 204, 'disabling again: 204 (idempotent)')
  t.equal(await isDisabled(user.id), true)
  t.equal((await loginAttempt(user.email, PASSWORD)).statusCode, 401, 'still refused')

  const changes = await auditOf(user.id, ['user_disabled'])
  t.equal(changes.length, 2, 'each disable is audited')
  for (const row of changes) t.match(row, { session_id: null, actor_client_id: admin.clientId })
  const logouts = await auditOf(user.id, ['logout'])
  t.same(logouts.map((row) => row.session_id).sort(), pairs.map(sidOf).sort(), 'one logout row per ended session, none for the second disable')
  for (const row of logouts) t.match(row, { actor_client_id: admin.clientId, detail: { scope: 'user_disabled' } })
  const failed = await auditOf(user.id, ['login_failed'])
  t.ok(failed.some((row) => row.detail?.reason === 'disabled'), 'the trail (not the answer) tells a disabled account from a wrong password')
  t.ok(failed.every((row) => row.actor_client_id === null), 'a login is no admin action')
})

t.test('POST /users/:id/enable: login works again, the ended sessions stay ended', async (t) => {
  const { user, pairs } = await userWithSessions()
  t.equal((await disable(user.id)).statusCode, 204)
  const res = await enable(user.id)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal(await isDisabled(user.id), false)
  t.equal((await lookup(user.email)).json().disabled, false, 'GET /users shows disabled: false')
  await assertDead(t, pairs, 'the sessions ended by the disable')
  t.equal(await countSessions(app, user.id), 0)

  const fresh = await loginUser(app, user.email)
  await assertLive(t, fresh, 'a new login')
  const rotated = await refresh(app, fresh.refresh_token)
  t.equal(rotated.statusCode, 200, 'refresh works again')
  t.equal((await listOf(user.id)).json().length, 1)

  t.equal((await enable(user.id)).statusCode, 204, 'enabling an enabled user: 204')
  await assertLive(t, rotated.json(), 'enabling again ends nothing')
  const enabled = await auditOf(user.id, ['user_enabled'])
  t.equal(enabled.length, 2)
  for (const row of enabled) t.match(row, { session_id: null, actor_client_id: admin.clientId })
})

t.test('POST /users/:id/disable: a refresh token rotated before the disable is refused, also within the grace window', async (t) => {
  const registered = await registerUser(app)
  const rotated = await refresh(app, registered.refresh_token)
  t.equal(rotated.statusCode, 200)
  t.equal((await disable(registered.user.id)).statusCode, 204)
  for (const token of [registered.refresh_token, rotated.json().refresh_token]) {
    const res = await refresh(app, token)
    t.equal(res.statusCode, 401)
    t.match(res.json(), errorBody(401, 'AUTH_INVALID_REFRESH_TOKEN'))
  }
  t.equal((await enable(registered.user.id)).statusCode, 204)
  t.equal((await refresh(app, rotated.json().refresh_token)).statusCode, 401, 'enabling brings no session back')
  t.equal(await countSessions(app, registered.user.id), 0)
})

t.test('POST /users/:id/disable and /enable: 404 for an unknown user or a non-UUID id', async (t) => {
  for (const action of [disable, enable]) {
    for (const id of [randomUUID(), ...NOT_UUIDS]) {
      const res = await action(encodeURIComponent(id))
      t.equal(res.statusCode, 404, id)
      t.match(res.json(), errorBody(404, 'AUTH_USER_NOT_FOUND'), id)
    }
  }
})
