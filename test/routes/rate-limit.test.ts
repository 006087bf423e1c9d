// /login, /register, /refresh, /revoke and /password are limited per IP and per account; 429 with
// Retry-After in the standard error shape; the client IP comes from X-Forwarded-For only when
// TRUST_PROXY says the proxy is trusted, and only when it is an IP address. Login lockout:
// login-lockout.test.ts. The policy: docs/security.md, "Rate limits and lockout".
import { sql } from 'kysely'
import t from 'tap'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, countSessions, errorShape, recordVerifications, refresh, registerUser, uniqueEmail } from '../helper.js'

const LIMITED = { RATE_LIMIT: 'on', RATE_LIMIT_ACCOUNT_MAX: '3', RATE_LIMIT_IP_MAX: '6', RATE_LIMIT_WINDOW: '1m' }

t.test('the per-IP limit counts every account from one address', async (t) => {
  const { app } = await buildTestApp(t, { env: LIMITED })
  const statuses = []
  for (let i = 0; i < 7; i++) {
    const res = await app.inject({
      method: 'POST',
      url: `${API_PREFIX}/login`,
      remoteAddress: '10.0.0.9',
      payload: { email: uniqueEmail(), password: PASSWORD }
    })
    statuses.push(res.statusCode)
  }
  t.same(statuses, [401, 401, 401, 401, 401, 401, 429])
})

t.test('the shared store holds no email address: the account part of every key is its SHA-256', async (t) => {
  const { app } = await buildTestApp(t, { env: LIMITED }) // limits on: a database of its own on PostgreSQL
  const email = uniqueEmail('keys')
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/register`, payload: { email, password: PASSWORD } })).statusCode, 201)
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password: 'wrong password, long enough' } })).statusCode, 401)
  const { rows } = await sql<{ key: string }>`select key from rate_limit_counts`.execute(app.db)
  const keys = rows.map((row) => row.key)
  t.ok(keys.some((key) => key.includes('login:account-failed:')), `the failure was counted per account (${keys.length} keys)`)
  const local = email.split('@')[0]
  t.same(keys.filter((key) => key.includes(local)), [], 'no key holds the email')
})

t.test('behind a trusted proxy the client address from X-Forwarded-For is counted', async (t) => {
  const { app } = await buildTestApp(t, { env: { ...LIMITED, TRUST_PROXY: 'true' } })
  const from = (client: string) =>
    app.inject({
      method: 'POST',
      url: `${API_PREFIX}/register`,
      remoteAddress: '192.168.0.1', // the proxy
      headers: { 'x-forwarded-for': client },
      payload: { email: uniqueEmail(), password: PASSWORD }
    })
  for (let i = 0; i < 6; i++) t.equal((await from('203.0.113.7')).statusCode, 201)
  t.equal((await from('203.0.113.7')).statusCode, 429, 'that client is limited')
  t.equal((await from('203.0.113.8')).statusCode, 201, 'another client behind the same proxy is not')
})

t.test('without TRUST_PROXY, X-Forwarded-For cannot be used to dodge the limit', async (t) => {
  const { app } = await buildTestApp(t, { env: LIMITED })
  const statuses = []
  for (let i = 0; i < 7; i++) {
    const res = await app.inject({
      method: 'POST',
      url: `${API_PREFIX}/register`,
      remoteAddress: '10.0.0.5',
      headers: { 'x-forwarded-for': `198.51.100.${i}` },
      payload: { email: uniqueEmail(), password: PASSWORD }
    })
    statuses.push(res.statusCode)
  }
  t.equal(statuses.at(-1), 429)
})

t.test('refresh is limited per session, password change per user', async (t) => {
  const { app, clock } = await buildTestApp(t, { env: { ...LIMITED, RATE_LIMIT_IP_MAX: '100', REFRESH_REUSE_GRACE: '10' } })
  const pair = await registerUser(app)
  let token = pair.refresh_token
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/refresh`, payload: { refresh_token: token } })
    t.equal(res.statusCode, 200)
    token = res.json().refresh_token
  }
  const limited = await app.inject({ method: 'POST', url: `${API_PREFIX}/refresh`, payload: { refresh_token: token } })
  t.equal(limited.statusCode, 429)
  t.ok(limited.headers['retry-after'])
  const rows = await app.db.selectFrom('user_sessions').select('refresh_jti_hash').where('user_id', '=', pair.user.id).execute()
  t.equal(rows.length, 1, 'the session is intact: a 429 changes nothing')
  t.equal((await refresh(app, token)).statusCode, 429, 'presenting the refused token again gains nothing')
  clock.advance(61)
  t.equal((await refresh(app, token)).statusCode, 200, 'a new window: the token is still current and rotates')

  const other = await registerUser(app)
  const change = () =>
    app.inject({
      method: 'POST',
      url: `${API_PREFIX}/password`,
      headers: bearer(other.access_token),
      payload: { current_password: 'not the password', new_password: 'another long password' }
    })
  for (let i = 0; i < 3; i++) t.equal((await change()).statusCode, 401)
  t.equal((await change()).statusCode, 429, 'guessing the current password is limited too')
})

t.test('RATE_LIMIT=off turns every limit off (load tests)', async (t) => {
  const { app } = await buildTestApp(t, { env: { ...LIMITED, RATE_LIMIT: 'off' } })
  const email = uniqueEmail()
  for (let i = 0; i < 10; i++) {
    const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password: PASSWORD } })
    t.equal(res.statusCode, 401)
  }
})

t.test('with the default limits, 20 concurrent refreshes of one token all answer 200, and the session refreshes on', async (t) => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT: 'on' } })
  const pair = await registerUser(app)
  const answers = await Promise.all(Array.from({ length: 20 }, () => refresh(app, pair.refresh_token)))
  t.same(answers.map((res) => res.statusCode), Array(20).fill(200), 'grace-window replays are not refused')
  const tokens = new Set(answers.map((res) => res.json().refresh_token))
  t.equal(tokens.size, 1, 'all hold the one new refresh token')
  // The 20 were one rotation: 9 more fit in the default limit of 10 per session.
  let token = [...tokens][0]
  for (let i = 0; i < 9; i++) {
    const res = await refresh(app, token)
    t.equal(res.statusCode, 200, `rotation ${i + 2}`)
    token = res.json().refresh_token
  }
  t.equal((await refresh(app, token)).statusCode, 429, 'the 11th rotation is over the limit')
})

t.test('refresh: tokens that are not genuine are limited per IP, before their signature is checked', async (t) => {
  const { app } = await buildTestApp(t, { env: LIMITED })
  const pair = await registerUser(app)
  const forged = `${pair.refresh_token.slice(0, -4)}AAAA`
  const from = (token: string, remoteAddress: string) =>
    app.inject({ method: 'POST', url: `${API_PREFIX}/refresh`, remoteAddress, payload: { refresh_token: token } })
  for (let i = 0; i < 3; i++) t.equal((await from(forged, '10.0.0.20')).statusCode, 401)
  const verifications = recordVerifications(app)
  const limited = await from(forged, '10.0.0.20')
  t.equal(limited.statusCode, 429)
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal(verifications.length, 0, 'refused without a signature check')
  t.equal((await from(pair.refresh_token, '10.0.0.21')).statusCode, 200, 'another address is not limited')
})

t.test('/revoke is limited per IP, and tokens that are not genuine per IP before they are checked', async (t) => {
  const { app } = await buildTestApp(t, { env: LIMITED })
  const revoke = (token: string, remoteAddress: string) =>
    app.inject({ method: 'POST', url: `${API_PREFIX}/revoke`, remoteAddress, payload: { token } })

  // Failed token checks: 3 per window from one address, then 429 even for a genuine token.
  const victim = await registerUser(app)
  for (const token of ['garbage', victim.access_token, `${victim.refresh_token.slice(0, -4)}AAAA`]) {
    t.equal((await revoke(token, '10.0.0.30')).statusCode, 200, 'RFC 7009: 200 for a token it does not revoke')
  }
  const verifications = recordVerifications(app)
  const limited = await revoke(victim.refresh_token, '10.0.0.30')
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { ...errorShape(429), code: 'AUTH_RATE_LIMITED' })
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal(verifications.length, 0, 'refused before any signature check')
  t.equal(await countSessions(app, victim.user.id), 1, 'and nothing was revoked')

  // Every request: RATE_LIMIT_IP_MAX (6) per window from one address, genuine tokens too.
  const statuses = []
  for (let i = 0; i < 7; i++) {
    const registered = await app.inject({
      method: 'POST',
      url: `${API_PREFIX}/register`,
      remoteAddress: `10.2.0.${i}`,
      payload: { email: uniqueEmail(), password: PASSWORD }
    })
    statuses.push((await revoke(registered.json().refresh_token, '10.0.0.31')).statusCode)
  }
  t.same(statuses, [200, 200, 200, 200, 200, 200, 429])
  verifications.length = 0
  t.equal((await revoke(victim.refresh_token, '10.0.0.32')).statusCode, 200, 'another address is not limited')
  t.equal(verifications.length, 1, 'the token is verified once (the limiter and the handler share the verdict)')
  t.equal(await countSessions(app, victim.user.id), 0, 'and revokes')
})

t.test('TRUST_PROXY: an X-Forwarded-For that is not an IP address is ignored, never stored as the session\'s ip', async (t) => {
  const { app } = await buildTestApp(t, { env: { TRUST_PROXY: 'true' } })
  const values = ['x'.repeat(6 * 1024), '<script>alert(1)</script><b>html</b>', 'unknown', '203.0.113.9 extra']
  for (const forwarded of values) {
    const res = await app.inject({
      method: 'POST',
      url: `${API_PREFIX}/register`,
      remoteAddress: '192.0.2.44',
      headers: { 'x-forwarded-for': forwarded },
      payload: { email: uniqueEmail(), password: PASSWORD }
    })
    t.equal(res.statusCode, 201)
    const sessions = await app.inject({ method: 'GET', url: `${API_PREFIX}/sessions`, headers: bearer(res.json().access_token) })
    t.equal(sessions.json()[0].ip, '192.0.2.44', `${forwarded.slice(0, 30)}: the socket's address instead`)
  }
  const res = await app.inject({
    method: 'POST',
    url: `${API_PREFIX}/register`,
    remoteAddress: '192.0.2.44',
    headers: { 'x-forwarded-for': '2001:db8::7' },
    payload: { email: uniqueEmail(), password: PASSWORD }
  })
  const sessions = await app.inject({ method: 'GET', url: `${API_PREFIX}/sessions`, headers: bearer(res.json().access_token) })
  t.equal(sessions.json()[0].ip, '2001:db8::7', 'an address is taken from a trusted proxy')
})
