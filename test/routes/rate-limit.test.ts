// Issue 4: /login, /register, /refresh and /password are limited per IP and per account; 429 with
// Retry-After in the standard error shape; the client IP comes from X-Forwarded-For only when
// TRUST_PROXY says the proxy is trusted.
import t from 'tap'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, errorShape, registerUser, uniqueEmail } from '../helper.js'

const LIMITED = { RATE_LIMIT: 'on', RATE_LIMIT_ACCOUNT_MAX: '3', RATE_LIMIT_IP_MAX: '6', RATE_LIMIT_WINDOW: '1m' }

t.test('login: the 4th attempt on one account within the window is 429 with Retry-After', async (t) => {
  const { app } = await buildTestApp(t, { env: LIMITED })
  const victim = uniqueEmail('victim')
  const attempt = (email: string, remoteAddress = '10.0.0.1') =>
    app.inject({ method: 'POST', url: `${API_PREFIX}/login`, remoteAddress, payload: { email, password: 'wrong password!' } })

  for (let i = 0; i < 3; i++) t.equal((await attempt(victim)).statusCode, 401)
  const limited = await attempt(victim.toUpperCase(), '10.0.0.2') // another IP, same account (emails are case-insensitive)
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), errorShape(429))
  t.ok(Number(limited.headers['retry-after']) > 0, `Retry-After: ${limited.headers['retry-after']}`)
  t.equal((await attempt(uniqueEmail('other'), '10.0.0.2')).statusCode, 401, 'another account is not affected')
})

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
  const { app } = await buildTestApp(t, { env: { ...LIMITED, RATE_LIMIT_IP_MAX: '100', REFRESH_REUSE_GRACE: '10' } })
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
