import t from 'tap'
import {
  API_PREFIX,
  PASSWORD,
  buildTestApp,
  countSessions,
  countUsers,
  decodeJwt,
  errorShape,
  me,
  uniqueEmail
} from '../helper.js'

const { app } = await buildTestApp(t)
const url = `${API_PREFIX}/register`
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

function register(payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, headers, payload: payload as string })
}


t.test('201 with a token pair, a session and a usable access token', async (t) => {
  const email = uniqueEmail('Register')
  const res = await register({ email, password: PASSWORD, display_name: 'Ada Lovelace' })
  t.equal(res.statusCode, 201)
  t.equal(res.headers['cache-control'], 'no-store', 'a response with tokens is never cached')
  const body = res.json()
  t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type', 'user'])
  t.same(Object.keys(body.user).sort(), ['created_at', 'display_name', 'email', 'email_verified', 'id'])
  t.match(body, {
    user: { id: UUID, email: email.toLowerCase(), display_name: 'Ada Lovelace', created_at: String },
    access_token: String,
    refresh_token: String,
    token_type: 'Bearer',
    expires_in: 900
  })
  t.ok(Number.isFinite(Date.parse(body.user.created_at)), 'created_at is a date-time')
  t.notOk(JSON.stringify(body).includes(PASSWORD), 'the password never comes back')

  const access = decodeJwt(body.access_token)
  const refreshToken = decodeJwt(body.refresh_token)
  t.equal(access.header.typ, 'at+jwt')
  t.equal(refreshToken.header.typ, 'refresh+jwt')
  t.equal(access.payload.sub, body.user.id)
  t.equal(refreshToken.payload.sub, body.user.id)
  t.equal(access.payload.sid, refreshToken.payload.sid, 'both tokens belong to one session')
  t.equal(access.payload.exp - access.payload.iat, body.expires_in)

  t.equal(await countUsers(app, email), 1)
  t.equal(await countSessions(app, body.user.id), 1, 'registration opens one session')
  const session = await app.db.selectFrom('user_sessions').selectAll().where('user_id', '=', body.user.id).executeTakeFirstOrThrow()
  t.equal(session.id, access.payload.sid)

  const profile = await me(app, body.access_token)
  t.equal(profile.statusCode, 200)
  t.same(profile.json(), body.user)
})

t.test('display_name is null when not given (present, not missing)', async (t) => {
  for (const [name, extra] of [['omitted', {}], ['explicit null', { display_name: null }]] as const) {
    const res = await register({ email: uniqueEmail(), password: PASSWORD, ...extra })
    t.equal(res.statusCode, 201, name)
    const body = res.json()
    t.ok('display_name' in body.user, `${name}: display_name is present`)
    t.equal(body.user.display_name, null, `${name}: and null`)
  }
})

t.test('a JSON body with a charset is accepted', async (t) => {
  const email = uniqueEmail()
  const res = await register(JSON.stringify({ email, password: PASSWORD }), { 'content-type': 'application/json; charset=utf-8' })
  t.equal(res.statusCode, 201)
  t.equal(await countUsers(app, email), 1)
})

t.test('the email is stored lower-cased and is unique whatever its case: 409', async (t) => {
  const local = `Mixed-${Date.now()}-${Math.random().toString(36).slice(2)}`
  const email = `${local}@Example.COM`
  const first = await register({ email, password: PASSWORD })
  t.equal(first.statusCode, 201)
  t.equal(first.json().user.email, email.toLowerCase())
  const stored = await app.db.selectFrom('users').select('email').where('id', '=', first.json().user.id).executeTakeFirstOrThrow()
  t.equal(stored.email, email.toLowerCase(), 'stored lower-cased')

  for (const variant of [email, email.toLowerCase(), email.toUpperCase()]) {
    const again = await register({ email: variant, password: 'another password 123' })
    t.equal(again.statusCode, 409, variant)
    t.match(again.json(), errorShape(409), variant)
    t.notOk(again.body.includes('another password 123'), 'no password in the error')
  }
  t.equal(await countUsers(app, email), 1, 'still one account')
  t.equal(await countSessions(app, first.json().user.id), 1, 'and no new session for it')
})

t.test('400 for invalid bodies, and nothing is created', async (t) => {
  const json = { 'content-type': 'application/json' }
  const cases: Array<[string, (email: string) => unknown, Record<string, string>?]> = [
    ['not an email', () => ({ email: 'not-an-email', password: PASSWORD })],
    ['email without a domain', (email) => ({ email: email.split('@')[0] + '@', password: PASSWORD })],
    ['email too long', () => ({ email: `${'a'.repeat(250)}@example.com`, password: PASSWORD })],
    ['missing email', () => ({ password: PASSWORD })],
    ['missing password', (email) => ({ email })],
    ['password of 7 characters', (email) => ({ email, password: 'short12' })],
    ['empty password', (email) => ({ email, password: '' })],
    ['password over 256 characters', (email) => ({ email, password: 'p'.repeat(257) })],
    ['unknown property', (email) => ({ email, password: PASSWORD, role: 'admin' })],
    ['email as a number', () => ({ email: 42, password: PASSWORD })],
    ['password as a number', (email) => ({ email, password: 12345678 })],
    ['password as an array', (email) => ({ email, password: [PASSWORD] })],
    ['display_name as a number', (email) => ({ email, password: PASSWORD, display_name: 7 })],
    ['display_name as an object', (email) => ({ email, password: PASSWORD, display_name: { first: 'A' } })],
    ['JSON array', (email) => JSON.stringify([{ email, password: PASSWORD }]), json],
    ['JSON null', () => 'null', json],
    ['malformed JSON', (email) => `{"email": "${email}", "password": "${PASSWORD}"`, json],
    ['empty body with Content-Type: application/json', () => '', json]
  ]
  for (const [name, build, headers] of cases) {
    const email = uniqueEmail('invalid')
    const res = await register(build(email), headers)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), errorShape(400), name)
    t.notOk(res.body.includes(PASSWORD), `${name}: no password in the error`)
    t.equal(await countUsers(app, email), 0, `${name}: no account created`)
  }
})

t.test('415 for a body that is not JSON, 413 for an oversized one, and nothing is created', async (t) => {
  const email = uniqueEmail()
  const form = await register(`email=${encodeURIComponent(email)}&password=${encodeURIComponent(PASSWORD)}`, {
    'content-type': 'application/x-www-form-urlencoded'
  })
  t.equal(form.statusCode, 415)
  t.match(form.json(), errorShape(415))
  const text = await register(JSON.stringify({ email, password: PASSWORD }), { 'content-type': 'text/plain' })
  t.equal(text.statusCode, 415)
  const huge = await register(JSON.stringify({ email, password: PASSWORD, display_name: 'x'.repeat(1_100_000) }), {
    'content-type': 'application/json'
  })
  t.equal(huge.statusCode, 413)
  t.match(huge.json(), errorShape(413))
  t.equal(await countUsers(app, email), 0)
})
