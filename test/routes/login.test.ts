import t from 'tap'
import {
  API_PREFIX,
  PASSWORD,
  buildTestApp,
  countSessions,
  decodeJwt,
  errorShape,
  me,
  registerUser,
  uniqueEmail
} from '../helper.js'

const { app } = await buildTestApp(t)
const url = `${API_PREFIX}/login`

function login(payload: unknown, headers: Record<string, string> = {}, remoteAddress?: string) {
  return app.inject({ method: 'POST', url, headers, payload: payload as string, ...(remoteAddress ? { remoteAddress } : {}) })
}

t.test('200 with a token pair and a new session row carrying the User-Agent and IP', async (t) => {
  const registered = await registerUser(app)
  const res = await login(
    { email: registered.user.email, password: PASSWORD },
    { 'user-agent': 'LoginTest/1.0 (Phone)' },
    '203.0.113.7'
  )
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.json()
  t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type', 'user'])
  t.same(body.user, registered.user, 'the same account as at registration')
  t.match(body, { access_token: String, refresh_token: String, token_type: 'Bearer', expires_in: 900 })
  t.notOk(res.body.includes(PASSWORD))

  const access = decodeJwt(body.access_token)
  const refreshToken = decodeJwt(body.refresh_token)
  t.equal(access.header.typ, 'at+jwt')
  t.equal(refreshToken.header.typ, 'refresh+jwt')
  t.equal(access.payload.sub, registered.user.id)
  t.equal(access.payload.sid, refreshToken.payload.sid)
  t.not(access.payload.sid, decodeJwt(registered.access_token).payload.sid, 'a new session, not the registration one')

  t.equal(await countSessions(app, registered.user.id), 2, 'one session per login')
  const row = await app.db.selectFrom('user_sessions').selectAll().where('id', '=', access.payload.sid).executeTakeFirstOrThrow()
  t.equal(row.user_id, registered.user.id)
  t.equal(row.user_agent, 'LoginTest/1.0 (Phone)')
  t.equal(row.ip, '203.0.113.7')
  t.not(row.refresh_jti_hash, refreshToken.payload.jti, 'the jti itself is not stored')

  t.equal((await me(app, body.access_token)).statusCode, 200)
  t.equal((await me(app, registered.access_token)).statusCode, 200, 'the first session still works')
})

t.test('every login opens its own session', async (t) => {
  const registered = await registerUser(app)
  const sids = new Set<string>()
  for (let i = 0; i < 3; i++) {
    const res = await login({ email: registered.user.email, password: PASSWORD })
    t.equal(res.statusCode, 200)
    sids.add(decodeJwt(res.json().access_token).payload.sid)
  }
  t.equal(sids.size, 3)
  t.equal(await countSessions(app, registered.user.id), 4)
})

t.test('unknown email and wrong password get the same 401, and no session', async (t) => {
  const registered = await registerUser(app)
  const wrongPassword = await login({ email: registered.user.email, password: 'not the password' })
  const unknownEmail = await login({ email: uniqueEmail('nobody'), password: 'not the password' })
  t.equal(wrongPassword.statusCode, 401)
  t.equal(unknownEmail.statusCode, 401)
  t.match(wrongPassword.json(), errorShape(401))
  t.same(wrongPassword.json(), unknownEmail.json(), 'identical bodies')
  t.equal(wrongPassword.headers['content-type'], unknownEmail.headers['content-type'])
  t.equal(wrongPassword.headers['www-authenticate'], unknownEmail.headers['www-authenticate'])
  t.notOk(wrongPassword.body.includes('not the password'))
  t.notOk(wrongPassword.body.includes(registered.user.email), 'the email is not echoed')

  // A wrong password in another case of the right one is still wrong.
  const shouted = await login({ email: registered.user.email, password: PASSWORD.toUpperCase() })
  t.equal(shouted.statusCode, 401)
  t.same(shouted.json(), wrongPassword.json())
  t.equal(await countSessions(app, registered.user.id), 1, 'no session was opened')
})

t.test('the email is case-insensitive', async (t) => {
  const email = uniqueEmail('CaseTest')
  const registered = await registerUser(app, email)
  for (const variant of [email.toUpperCase(), email.toLowerCase(), email]) {
    const res = await login({ email: variant, password: PASSWORD })
    t.equal(res.statusCode, 200, variant)
    t.equal(res.json().user.id, registered.user.id, `${variant}: the same account`)
    t.equal(res.json().user.email, email.toLowerCase())
  }
  t.equal(await countSessions(app, registered.user.id), 4)
})

t.test('400 for invalid bodies, and no session is opened', async (t) => {
  const registered = await registerUser(app)
  const email = registered.user.email
  const json = { 'content-type': 'application/json' }
  const cases: Array<[string, unknown, Record<string, string>?]> = [
    ['missing email', { password: PASSWORD }],
    ['missing password', { email }],
    ['empty password', { email, password: '' }],
    ['not an email', { email: 'not-an-email', password: PASSWORD }],
    ['unknown property', { email, password: PASSWORD, remember_me: true }],
    ['email as a number', { email: 1, password: PASSWORD }],
    ['password as a number', { email, password: 12345678 }],
    ['password as null', { email, password: null }],
    ['password over 256 characters', { email, password: 'p'.repeat(257) }],
    ['JSON array', JSON.stringify([{ email, password: PASSWORD }]), json],
    ['JSON string', JSON.stringify(PASSWORD), json],
    ['malformed JSON', `{"email":"${email}","password":"${PASSWORD}"`, json],
    ['no body', undefined, json]
  ]
  for (const [name, payload, headers] of cases) {
    const res = await login(payload, headers)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), errorShape(400), name)
    t.notOk(res.body.includes(PASSWORD), `${name}: no password in the error`)
  }
  t.equal(await countSessions(app, registered.user.id), 1, 'no session was opened')
  t.equal((await login({ email, password: PASSWORD })).statusCode, 200, 'the account still logs in')
})

t.test('415 for a body that is not JSON', async (t) => {
  const registered = await registerUser(app)
  for (const type of ['application/x-www-form-urlencoded', 'text/plain']) {
    const res = await login(`email=${encodeURIComponent(registered.user.email)}&password=x`, { 'content-type': type })
    t.equal(res.statusCode, 415, type)
    t.match(res.json(), errorShape(415), type)
  }
  t.equal(await countSessions(app, registered.user.id), 1)
})

t.test('429 once the login rate limit is exhausted', async (t) => {
  const limited = await buildTestApp(t, { env: { RATE_LIMIT: 'on', RATE_LIMIT_ACCOUNT_MAX: '3', RATE_LIMIT_IP_MAX: '100' } })
  const registered = await registerUser(limited.app)
  const attempt = (password: string) =>
    limited.app.inject({ method: 'POST', url, payload: { email: registered.user.email, password } })
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await attempt('wrong password')).statusCode)
  t.same(statuses, [401, 401, 401], 'the first attempts are answered normally')
  const res = await attempt('wrong password')
  t.equal(res.statusCode, 429, 'then the limit answers 429')
  t.match(res.json(), errorShape(429))
  t.equal((await attempt(PASSWORD)).statusCode, 429, 'even the right password, while limited')
  t.equal(await countSessions(limited.app, registered.user.id), 1, 'no session was opened')
})
