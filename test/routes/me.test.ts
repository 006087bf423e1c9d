import t from 'tap'
import {
  API_PREFIX,
  PASSWORD,
  bearer,
  buildTestApp,
  decodeJwt,
  errorShape,
  me,
  registerUser,
  uniqueEmail,
  signWith
} from '../helper.js'

const { app, privateKeyPem } = await buildTestApp(t)
const url = `${API_PREFIX}/me`

function get(headers: Record<string, string> = {}, path = url) {
  return app.inject({ method: 'GET', url: path, headers })
}

t.test('200 with the profile of the caller', async (t) => {
  const email = uniqueEmail('Me')
  const res = await app.inject({
    method: 'POST',
    url: `${API_PREFIX}/register`,
    payload: { email, password: PASSWORD, display_name: 'Grace Hopper' }
  })
  const pair = res.json()
  const profile = await me(app, pair.access_token)
  t.equal(profile.statusCode, 200)
  t.equal(profile.headers['cache-control'], 'no-store')
  const body = profile.json()
  t.same(Object.keys(body).sort(), ['created_at', 'display_name', 'email', 'email_verified', 'id'], 'exactly the public fields')
  t.same(body, { id: pair.user.id, email: email.toLowerCase(), display_name: 'Grace Hopper', email_verified: false, created_at: pair.user.created_at })
  t.ok(Number.isFinite(Date.parse(body.created_at)))
  t.notOk('password_hash' in body)
})

t.test('display_name is present as null when not set', async (t) => {
  const pair = await registerUser(app)
  const body = (await me(app, pair.access_token)).json()
  t.ok('display_name' in body)
  t.equal(body.display_name, null)
  t.equal(body.id, pair.user.id)
})

t.test('each user sees only their own profile', async (t) => {
  const alice = await registerUser(app)
  const bob = await registerUser(app)
  t.equal((await me(app, alice.access_token)).json().id, alice.user.id)
  t.equal((await me(app, bob.access_token)).json().id, bob.user.id)
})

t.test('401 with WWW-Authenticate: Bearer when no token is sent', async (t) => {
  const pair = await registerUser(app)
  const cases: Array<[string, Record<string, string>, string?]> = [
    ['no Authorization header', {}],
    ['Basic credentials', { authorization: 'Basic ' + Buffer.from(`${pair.user.email}:${PASSWORD}`).toString('base64') }],
    ['Bearer with nothing after it', { authorization: 'Bearer' }],
    ['Bearer and blanks', { authorization: 'Bearer    ' }],
    ['the token without a scheme', { authorization: pair.access_token }],
    ['the token in the query string', {}, `${url}?access_token=${pair.access_token}`]
  ]
  for (const [name, headers, path] of cases) {
    const res = await get(headers, path)
    t.equal(res.statusCode, 401, name)
    t.equal(res.headers['www-authenticate'], 'Bearer', name)
    t.match(res.json(), errorShape(401), name)
  }
})

t.test('401 with error="invalid_token" for a malformed or invalid token', async (t) => {
  const pair = await registerUser(app)
  const { header, payload } = decodeJwt(pair.access_token)
  t.equal(signWith(privateKeyPem, header, payload), pair.access_token, 'the forger reproduces a genuine token byte for byte')
  const cases: Record<string, string> = {
    'not a JWT': 'Bearer not-a-jwt',
    'three empty parts': 'Bearer ..',
    'two tokens': `Bearer ${pair.access_token} ${pair.access_token}`,
    'bad signature': `Bearer ${pair.access_token.slice(0, pair.access_token.lastIndexOf('.') + 1)}${'A'.repeat(86)}`,
    'the refresh token': `Bearer ${pair.refresh_token}`,
    expired: `Bearer ${signWith(privateKeyPem, header, { ...payload, iat: payload.iat - 7200, exp: payload.iat - 3600 })}`
  }
  for (const [name, authorization] of Object.entries(cases)) {
    const res = await get({ authorization })
    t.equal(res.statusCode, 401, name)
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', name)
    t.match(res.json(), errorShape(401), name)
    t.notOk(res.body.includes(pair.access_token), `${name}: no token in the error`)
  }
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'the genuine token still works')
  t.equal((await get({ authorization: `bearer ${pair.access_token}` })).statusCode, 200, 'the scheme is case-insensitive')
})

t.test('401 once the session is gone', async (t) => {
  const pair = await registerUser(app)
  const logout = await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  t.equal(logout.statusCode, 204)
  const res = await me(app, pair.access_token)
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.match(res.json(), errorShape(401))
})
