import { randomUUID } from 'node:crypto'
import t from 'tap'
import {
  API_PREFIX,
  PASSWORD,
  bearer,
  buildTestApp,
  countSessions,
  decodeJwt,
  errorShape,
  me,
  refresh,
  registerUser,
  uniqueEmail,
  type TokenPairBody
} from '../helper.js'

const { app } = await buildTestApp(t)
const url = `${API_PREFIX}/sessions`
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const sidOf = (pair: TokenPairBody): string => decodeJwt(pair.access_token).payload.sid

function list(accessToken: string) {
  return app.inject({ method: 'GET', url, headers: bearer(accessToken) })
}

function remove(accessToken: string | undefined, id: string) {
  return app.inject({ method: 'DELETE', url: `${url}/${id}`, headers: accessToken ? bearer(accessToken) : {} })
}

/** Logs in from a given device (User-Agent) and address. */
async function loginFrom(email: string, userAgent: string, remoteAddress: string): Promise<TokenPairBody> {
  const res = await app.inject({
    method: 'POST',
    url: `${API_PREFIX}/login`,
    headers: { 'user-agent': userAgent },
    remoteAddress,
    payload: { email, password: PASSWORD }
  })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode}`)
  return res.json()
}

/** A user with two sessions: a laptop and a phone. */
async function userWithTwoDevices() {
  const registered = await registerUser(app)
  const laptop = await loginFrom(registered.user.email, 'Laptop/1.0', '192.0.2.10')
  const phone = await loginFrom(registered.user.email, 'Phone/2.0', '198.51.100.20')
  // The registration session is ended so that exactly the two devices remain.
  await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(registered.access_token) })
  return { laptop, phone, userId: registered.user.id }
}

t.test('GET /sessions lists the caller\'s sessions, current: true on the caller\'s only', async (t) => {
  const { laptop, phone, userId } = await userWithTwoDevices()
  const stranger = await registerUser(app)

  const res = await list(phone.access_token)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const sessions = res.json() as Array<Record<string, unknown>>
  t.equal(sessions.length, 2, 'both devices, nobody else\'s')
  for (const session of sessions) {
    t.same(Object.keys(session).sort(), ['created_at', 'current', 'expires_at', 'id', 'ip', 'last_used_at', 'user_agent'])
    t.match(session, { id: UUID, created_at: ISO, last_used_at: ISO, expires_at: ISO, current: Boolean })
    t.ok(Date.parse(session.expires_at as string) > Date.parse(session.created_at as string), 'expires after it was created')
  }
  const byId = new Map(sessions.map((session) => [session.id, session]))
  t.match(byId.get(sidOf(phone)), { current: true, user_agent: 'Phone/2.0', ip: '198.51.100.20' })
  t.match(byId.get(sidOf(laptop)), { current: false, user_agent: 'Laptop/1.0', ip: '192.0.2.10' })
  t.equal(sessions.filter((session) => session.current).length, 1, 'exactly one is current')
  t.notOk(byId.has(sidOf(stranger)), "another user's session is not listed")
  t.notOk(res.body.includes('refresh_jti_hash') || res.body.includes('hash'), 'no token material')

  const fromLaptop = (await list(laptop.access_token)).json() as Array<Record<string, unknown>>
  t.equal(fromLaptop.find((session) => session.current)?.id, sidOf(laptop), 'current follows the calling token')
  t.equal(await countSessions(app, userId), 2)
})

t.test('GET /sessions: user_agent and ip are null when unknown', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: `${API_PREFIX}/register`,
    headers: { 'user-agent': undefined }, // light-my-request sends one unless told not to
    payload: { email: uniqueEmail(), password: PASSWORD }
  })
  t.equal(res.statusCode, 201)
  const [session] = (await list(res.json().access_token)).json()
  t.equal(session.user_agent, null)
  t.ok('ip' in session)
})

t.test('GET /sessions without a valid token is 401 with WWW-Authenticate', async (t) => {
  const pair = await registerUser(app)
  const missing = await app.inject({ method: 'GET', url })
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer')
  t.match(missing.json(), errorShape(401))
  const refreshToken = await list(pair.refresh_token)
  t.equal(refreshToken.statusCode, 401, 'a refresh token is not an access token')
  t.equal(refreshToken.headers['www-authenticate'], 'Bearer error="invalid_token"')
  const garbage = await list('garbage')
  t.equal(garbage.statusCode, 401)
  t.equal(garbage.headers['www-authenticate'], 'Bearer error="invalid_token"')
})

t.test('DELETE /sessions/:id of another own session: 204, and its tokens die', async (t) => {
  const { laptop, phone, userId } = await userWithTwoDevices()
  const res = await remove(phone.access_token, sidOf(laptop))
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal(await countSessions(app, userId), 1)
  t.equal((await me(app, laptop.access_token)).statusCode, 401, "the laptop's access token is dead")
  t.equal((await refresh(app, laptop.refresh_token)).statusCode, 401, "the laptop's refresh token is dead")
  t.equal((await me(app, phone.access_token)).statusCode, 200, 'the caller still works')
  const remaining = (await list(phone.access_token)).json()
  t.same(remaining.map((session: { id: string }) => session.id), [sidOf(phone)])

  const again = await remove(phone.access_token, sidOf(laptop))
  t.equal(again.statusCode, 404, 'a session already gone is not found')
  t.match(again.json(), errorShape(404))
})

t.test('DELETE /sessions/:id of the current session: 204, and the caller is logged out', async (t) => {
  const { laptop, phone, userId } = await userWithTwoDevices()
  const res = await remove(phone.access_token, sidOf(phone))
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal(await countSessions(app, userId), 1)
  const after = await me(app, phone.access_token)
  t.equal(after.statusCode, 401)
  t.equal(after.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal((await refresh(app, phone.refresh_token)).statusCode, 401)
  t.equal((await me(app, laptop.access_token)).statusCode, 200, 'the other device stays')
})

t.test("DELETE /sessions/:id of another user's session is 404 and deletes nothing", async (t) => {
  const alice = await registerUser(app)
  const bob = await registerUser(app)
  const res = await remove(alice.access_token, sidOf(bob))
  t.equal(res.statusCode, 404)
  t.match(res.json(), errorShape(404))
  const unknown = await remove(alice.access_token, randomUUID())
  t.equal(unknown.statusCode, 404, 'the same answer as for a session that does not exist')
  t.same(unknown.json(), res.json(), 'indistinguishable from "not found"')
  t.equal(await countSessions(app, bob.user.id), 1)
  t.equal(await countSessions(app, alice.user.id), 1)
  t.equal((await me(app, bob.access_token)).statusCode, 200)
})

t.test('DELETE /sessions/:id with an id that is not a UUID is 404 (not found) and deletes nothing', async (t) => {
  const { phone, userId } = await userWithTwoDevices()
  for (const id of ['not-a-uuid', '1', sidOf(phone).toUpperCase().replace(/-/g, ''), `${sidOf(phone)}x`, "1' OR '1'='1"]) {
    const res = await remove(phone.access_token, encodeURIComponent(id))
    t.equal(res.statusCode, 404, id)
    t.match(res.json(), errorShape(404), id)
  }
  t.equal(await countSessions(app, userId), 2)
})

t.test('DELETE /sessions/:id without a valid token is 401 and deletes nothing', async (t) => {
  const { laptop, phone, userId } = await userWithTwoDevices()
  const missing = await remove(undefined, sidOf(laptop))
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer')
  t.match(missing.json(), errorShape(401))
  const refreshToken = await remove(phone.refresh_token, sidOf(laptop))
  t.equal(refreshToken.statusCode, 401)
  t.equal(refreshToken.headers['www-authenticate'], 'Bearer error="invalid_token"')
  const garbage = await remove('garbage', 'not-a-uuid')
  t.equal(garbage.statusCode, 401, 'authentication comes before anything else')
  t.equal(await countSessions(app, userId), 2)
})
