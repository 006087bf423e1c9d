// POST /revoke (RFC 7009): always 200 with an empty body; only a genuine refresh token ends
// anything (its session).
import t from 'tap'
import {
  API_PREFIX,
  buildTestApp,
  countSessions,
  decodeJwt,
  errorShape,
  loginUser,
  me,
  refresh,
  registerUser,
  signWith
} from '../helper.js'

const { app, privateKeyPem } = await buildTestApp(t)
const url = `${API_PREFIX}/revoke`

function revoke(payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, headers, payload: payload as string })
}

/** A user with two sessions (two devices). */
async function userWithTwoSessions() {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  return { first, second, userId: first.user.id }
}

t.test('a genuine refresh token: 200, empty body, and its session is ended', async (t) => {
  const { first, second, userId } = await userWithTwoSessions()
  const res = await revoke({ token: second.refresh_token })
  t.equal(res.statusCode, 200)
  t.equal(res.body, '', 'empty body')
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(await countSessions(app, userId), 1)
  const gone = await app.db.selectFrom('user_sessions').select('id').where('id', '=', decodeJwt(second.refresh_token).payload.sid).execute()
  t.same(gone, [], 'the row is deleted')
  t.equal((await refresh(app, second.refresh_token)).statusCode, 401, 'its refresh token is dead')
  t.equal((await me(app, second.access_token)).statusCode, 401, 'and its access token too')
  t.equal((await me(app, first.access_token)).statusCode, 200, 'the other session stays')
})

t.test('token_type_hint does not matter for a genuine refresh token', async (t) => {
  for (const hint of ['refresh_token', 'access_token', 'something_else']) {
    const { second, userId } = await userWithTwoSessions()
    const res = await revoke({ token: second.refresh_token, token_type_hint: hint })
    t.equal(res.statusCode, 200, hint)
    t.equal(await countSessions(app, userId), 1, `${hint}: the session is ended`)
  }
})

t.test('a rotated refresh token still names its session: revoking the current one ends it', async (t) => {
  const { second, userId } = await userWithTwoSessions()
  const rotated = await refresh(app, second.refresh_token)
  t.equal(rotated.statusCode, 200)
  const res = await revoke({ token: rotated.json().refresh_token })
  t.equal(res.statusCode, 200)
  t.equal(await countSessions(app, userId), 1)
  t.equal((await me(app, rotated.json().access_token)).statusCode, 401)
})

t.test('garbage, an access token, a forged token: 200, empty body, and nothing changes', async (t) => {
  const { first, second, userId } = await userWithTwoSessions()
  const { header, payload } = decodeJwt(second.refresh_token)
  t.equal(signWith(privateKeyPem, header, payload), second.refresh_token, 'the forger reproduces a genuine token byte for byte')
  const cases: Record<string, string> = {
    garbage: 'garbage',
    empty: '',
    'three dots of nothing': 'a.b.c',
    'an access token': second.access_token,
    'an access token with the hint': second.access_token,
    'bad signature': second.refresh_token.slice(0, second.refresh_token.lastIndexOf('.') + 1) + 'A'.repeat(86),
    'typ JWT': signWith(privateKeyPem, { ...header, typ: 'JWT' }, payload),
    'wrong audience': signWith(privateKeyPem, header, { ...payload, aud: 'someone-else' }),
    expired: signWith(privateKeyPem, header, { ...payload, iat: payload.iat - 7200, exp: payload.iat - 3600 })
  }
  for (const [name, token] of Object.entries(cases)) {
    const res = await revoke(name.endsWith('with the hint') ? { token, token_type_hint: 'access_token' } : { token })
    t.equal(res.statusCode, 200, name)
    t.equal(res.body, '', `${name}: empty body`)
  }
  t.equal(await countSessions(app, userId), 2, 'no session was ended')
  t.equal((await me(app, first.access_token)).statusCode, 200)
  t.equal((await me(app, second.access_token)).statusCode, 200, 'the access token presented is still alive')
  t.equal((await refresh(app, second.refresh_token)).statusCode, 200, 'and so is the refresh token')
})

t.test('an already revoked token: 200 again, and nothing else changes', async (t) => {
  const { first, second, userId } = await userWithTwoSessions()
  t.equal((await revoke({ token: second.refresh_token })).statusCode, 200)
  t.equal(await countSessions(app, userId), 1)
  const again = await revoke({ token: second.refresh_token })
  t.equal(again.statusCode, 200)
  t.equal(again.body, '')
  t.equal(await countSessions(app, userId), 1, 'the other session is not touched')
  t.equal((await me(app, first.access_token)).statusCode, 200)
})

t.test("one user's revoke never touches another user's sessions", async (t) => {
  const alice = await registerUser(app)
  const bob = await registerUser(app)
  t.equal((await revoke({ token: alice.refresh_token })).statusCode, 200)
  t.equal(await countSessions(app, alice.user.id), 0)
  t.equal(await countSessions(app, bob.user.id), 1)
  t.equal((await me(app, bob.access_token)).statusCode, 200)
})

t.test('400 for invalid bodies, 415 for a non-JSON one, and nothing changes', async (t) => {
  const { second, userId } = await userWithTwoSessions()
  const json = { 'content-type': 'application/json' }
  const cases: Array<[string, unknown, Record<string, string>?]> = [
    ['missing token', {}],
    ['only a hint', { token_type_hint: 'refresh_token' }],
    ['token as a number', { token: 42 }],
    ['token as null', { token: null }],
    ['token as an array', { token: [second.refresh_token] }],
    ['hint as a number', { token: second.refresh_token, token_type_hint: 1 }],
    ['unknown property', { token: second.refresh_token, client_id: 'x' }],
    ['refresh_token instead of token', { refresh_token: second.refresh_token }],
    ['JSON array', JSON.stringify([second.refresh_token]), json],
    ['malformed JSON', `{"token":"${second.refresh_token}"`, json],
    ['no body', undefined, json]
  ]
  for (const [name, payload, headers] of cases) {
    const res = await revoke(payload, headers)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), errorShape(400), name)
    t.notOk(res.body.includes(second.refresh_token), `${name}: the token is not echoed`)
  }
  for (const type of ['application/x-www-form-urlencoded', 'text/plain']) {
    const res = await revoke(`token=${second.refresh_token}`, { 'content-type': type })
    t.equal(res.statusCode, 415, type)
    t.match(res.json(), errorShape(415), type)
  }
  t.equal(await countSessions(app, userId), 2, 'nothing was revoked')
  t.equal((await me(app, second.access_token)).statusCode, 200)
})
