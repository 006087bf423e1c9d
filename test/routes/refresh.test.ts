// POST /refresh: rotation and its error answers. The grace window and reuse (theft) cases live
// in test/revocation/.
import { createHash } from 'node:crypto'
import t from 'tap'
import {
  API_PREFIX,
  buildTestApp,
  countSessions,
  decodeJwt,
  errorShape,
  me,
  refresh,
  registerUser,
  signWith
} from '../helper.js'

const { app, clock, privateKeyPem } = await buildTestApp(t)
const url = `${API_PREFIX}/refresh`

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex')

function post(payload: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, headers, payload: payload as string })
}

async function sessionRow(sessionId: string) {
  return app.db.selectFrom('user_sessions').selectAll().where('id', '=', sessionId).executeTakeFirst()
}

t.test('200 with a new token pair; the row keeps its id and gets the new hash and last_used_at', async (t) => {
  const registered = await registerUser(app)
  const old = decodeJwt(registered.refresh_token)
  const sid = old.payload.sid
  const before = await sessionRow(sid)
  t.ok(before, 'the session exists')
  t.equal(before!.refresh_jti_hash, sha256(old.payload.jti), 'the row holds the SHA-256 of the jti')

  clock.advance(120)
  const res = await refresh(app, registered.refresh_token)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.json()
  t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type', 'user'])
  t.same(body.user, registered.user)
  t.match(body, { token_type: 'Bearer', expires_in: 900 })
  t.not(body.refresh_token, registered.refresh_token, 'a new refresh token')
  t.not(body.access_token, registered.access_token, 'a new access token')

  const next = decodeJwt(body.refresh_token)
  const access = decodeJwt(body.access_token)
  t.equal(next.header.typ, 'refresh+jwt')
  t.equal(access.header.typ, 'at+jwt')
  t.equal(next.payload.sid, sid, 'rotation keeps the session id')
  t.equal(access.payload.sid, sid)
  t.not(next.payload.jti, old.payload.jti, 'a new jti')
  t.equal(next.payload.exp, old.payload.exp, 'rotation does not extend the refresh lifetime')

  const after = await sessionRow(sid)
  t.ok(after)
  t.equal(after!.refresh_jti_hash, sha256(next.payload.jti), "the old row's hash is replaced by the new jti's")
  t.not(after!.refresh_jti_hash, before!.refresh_jti_hash)
  t.not(after!.refresh_jti_hash, next.payload.jti, 'never the raw jti')
  t.ok(after!.last_used_at.getTime() > before!.last_used_at.getTime(), 'last_used_at moved forward')
  t.ok(Math.abs(after!.last_used_at.getTime() - clock.now().getTime()) < 5_000, 'to now')
  t.equal(after!.created_at.getTime(), before!.created_at.getTime(), 'created_at unchanged')
  t.equal(after!.expires_at.getTime(), before!.expires_at.getTime(), 'expires_at unchanged')
  t.equal(await countSessions(app, registered.user.id), 1, 'still one session')

  t.equal((await me(app, body.access_token)).statusCode, 200, 'the new access token works')
  const again = await refresh(app, body.refresh_token)
  t.equal(again.statusCode, 200, 'and the new refresh token rotates again')
  t.equal(decodeJwt(again.json().refresh_token).payload.sid, sid)
})

t.test('an access token in place of the refresh token is 401 and changes nothing', async (t) => {
  const registered = await registerUser(app)
  const sid = decodeJwt(registered.refresh_token).payload.sid
  const before = await sessionRow(sid)
  clock.advance(5)
  const res = await refresh(app, registered.access_token)
  t.equal(res.statusCode, 401)
  t.match(res.json(), errorShape(401))
  t.notOk(res.body.includes(registered.access_token), 'the token is not echoed')
  t.same(await sessionRow(sid), before, 'the row is untouched')
  t.equal((await me(app, registered.access_token)).statusCode, 200, 'the session is alive')
  t.equal((await refresh(app, registered.refresh_token)).statusCode, 200, 'and its refresh token still works')
})

t.test('garbage and broken refresh tokens are 401 and change nothing', async (t) => {
  const registered = await registerUser(app)
  const token = registered.refresh_token
  const { header, payload } = decodeJwt(token)
  const sid = payload.sid
  const before = await sessionRow(sid)
  t.equal(signWith(privateKeyPem, header, payload), token, 'the forger reproduces a genuine token byte for byte')
  const lastDot = token.lastIndexOf('.')
  const cases: Record<string, string> = {
    garbage: 'garbage',
    'three dots of nothing': 'a.b.c',
    'truncated signature': token.slice(0, -10),
    'no signature': token.slice(0, lastDot + 1),
    'bad signature': token.slice(0, lastDot + 1) + 'A'.repeat(86),
    'typ JWT': signWith(privateKeyPem, { ...header, typ: 'JWT' }, payload),
    'typ missing': signWith(privateKeyPem, { alg: header.alg, kid: header.kid }, payload),
    expired: signWith(privateKeyPem, header, { ...payload, iat: payload.iat - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })
  }
  for (const [name, value] of Object.entries(cases)) {
    const res = await refresh(app, value)
    t.equal(res.statusCode, 401, name)
    t.match(res.json(), errorShape(401), name)
  }
  t.same(await sessionRow(sid), before, 'the row is untouched')
  t.equal((await refresh(app, token)).statusCode, 200, 'the genuine token still works')
})

t.test('a refresh token whose session has ended (REFRESH_TOKEN_TTL passed) is 401', async (t) => {
  const registered = await registerUser(app)
  clock.advance(30 * 86_400 + 60)
  const res = await refresh(app, registered.refresh_token)
  t.equal(res.statusCode, 401)
  t.match(res.json(), errorShape(401))
})

t.test('400 for invalid bodies, and nothing changes', async (t) => {
  const registered = await registerUser(app)
  const sid = decodeJwt(registered.refresh_token).payload.sid
  const before = await sessionRow(sid)
  const json = { 'content-type': 'application/json' }
  const cases: Array<[string, unknown, Record<string, string>?]> = [
    ['missing refresh_token', {}],
    ['empty refresh_token', { refresh_token: '' }],
    ['refresh_token as a number', { refresh_token: 42 }],
    ['refresh_token as null', { refresh_token: null }],
    ['refresh_token as an array', { refresh_token: [registered.refresh_token] }],
    ['unknown property', { refresh_token: registered.refresh_token, grant_type: 'refresh_token' }],
    ['JSON array', JSON.stringify([registered.refresh_token]), json],
    ['malformed JSON', `{"refresh_token":"${registered.refresh_token}"`, json],
    ['no body', undefined, json]
  ]
  for (const [name, payload, headers] of cases) {
    const res = await post(payload, headers)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), errorShape(400), name)
    t.notOk(res.body.includes(registered.refresh_token), `${name}: the token is not echoed`)
  }
  const form = await post(`refresh_token=${registered.refresh_token}`, { 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(form.statusCode, 415, 'a form body is 415')
  t.same(await sessionRow(sid), before, 'the row is untouched')
  t.equal((await refresh(app, registered.refresh_token)).statusCode, 200, 'the token still works')
  t.equal(await countSessions(app, registered.user.id), 1)
})
