// GET /verify: gateway forward-auth. 204 with x-user-id and x-session-id, or 401.
import t from 'tap'
import {
  API_PREFIX,
  bearer,
  buildTestApp,
  decodeJwt,
  errorShape,
  loginUser,
  registerUser,
  signWith
} from '../helper.js'

const { app, privateKeyPem } = await buildTestApp(t)
const url = `${API_PREFIX}/verify`

function verify(headers: Record<string, string> = {}) {
  return app.inject({ method: 'GET', url, headers })
}

t.test('204 with x-user-id and x-session-id for a valid access token', async (t) => {
  const pair = await registerUser(app)
  const sid = decodeJwt(pair.access_token).payload.sid
  const res = await verify(bearer(pair.access_token))
  t.equal(res.statusCode, 204)
  t.equal(res.body, '', 'empty body')
  t.equal(res.headers['x-user-id'], pair.user.id)
  t.equal(res.headers['x-session-id'], sid)
  const row = await app.db.selectFrom('user_sessions').select(['id', 'user_id']).where('id', '=', sid).executeTakeFirst()
  t.same(row, { id: sid, user_id: pair.user.id }, 'the headers name a live session of that user')

  const again = await verify(bearer(pair.access_token))
  t.equal(again.statusCode, 204, 'a second check answers the same')
  t.equal(again.headers['x-session-id'], sid)
})

t.test('each session of a user is told apart', async (t) => {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  const a = await verify(bearer(first.access_token))
  const b = await verify(bearer(second.access_token))
  t.equal(a.headers['x-user-id'], b.headers['x-user-id'])
  t.not(a.headers['x-session-id'], b.headers['x-session-id'])
  t.equal(b.headers['x-session-id'], decodeJwt(second.access_token).payload.sid)
})

t.test('401 without a token, with WWW-Authenticate: Bearer and no identity headers', async (t) => {
  for (const [name, headers] of [
    ['no Authorization header', {}],
    ['Basic credentials', { authorization: 'Basic dXNlcjpwYXNz' }],
    ['Bearer without a token', { authorization: 'Bearer' }]
  ] as Array<[string, Record<string, string>]>) {
    const res = await verify(headers)
    t.equal(res.statusCode, 401, name)
    t.equal(res.headers['www-authenticate'], 'Bearer', name)
    t.match(res.json(), errorShape(401), name)
    t.notOk('x-user-id' in res.headers, `${name}: no x-user-id`)
    t.notOk('x-session-id' in res.headers, `${name}: no x-session-id`)
  }
})

t.test('401 with error="invalid_token" for a bad token, and no identity headers', async (t) => {
  const pair = await registerUser(app)
  const { header, payload } = decodeJwt(pair.access_token)
  t.equal(signWith(privateKeyPem, header, payload), pair.access_token, 'the forger reproduces a genuine token byte for byte')
  const cases: Record<string, string> = {
    garbage: 'garbage',
    'the refresh token': pair.refresh_token,
    'bad signature': pair.access_token.slice(0, pair.access_token.lastIndexOf('.') + 1) + 'A'.repeat(86),
    expired: signWith(privateKeyPem, header, { ...payload, iat: payload.iat - 7200, exp: payload.iat - 3600 }),
    'wrong issuer': signWith(privateKeyPem, header, { ...payload, iss: 'https://evil.example' })
  }
  for (const [name, token] of Object.entries(cases)) {
    const res = await verify(bearer(token))
    t.equal(res.statusCode, 401, name)
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', name)
    t.match(res.json(), errorShape(401), name)
    t.notOk('x-user-id' in res.headers, `${name}: no x-user-id`)
  }
  t.equal((await verify(bearer(pair.access_token))).statusCode, 204, 'the genuine token still passes')
})

t.test('401 once the session is ended, at once', async (t) => {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  t.equal((await verify(bearer(second.access_token))).statusCode, 204, 'checked (and possibly cached) while alive')

  const logout = await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(second.access_token) })
  t.equal(logout.statusCode, 204)
  const res = await verify(bearer(second.access_token))
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.notOk('x-user-id' in res.headers)

  const sid = decodeJwt(first.access_token).payload.sid
  const deleted = await app.inject({ method: 'DELETE', url: `${API_PREFIX}/sessions/${sid}`, headers: bearer(first.access_token) })
  t.equal(deleted.statusCode, 204)
  t.equal((await verify(bearer(first.access_token))).statusCode, 401, 'also after DELETE /sessions/:id')
})
