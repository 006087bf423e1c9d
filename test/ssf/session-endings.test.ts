// Every way a session ends reaches the streams as a CAEP session-revoked SET (docs/ssf.md,
// "Events"), with who ended it and why; a password change also sends credential-change. The
// clean-up of sessions that had expired sends nothing. Through app.inject() on a real database.
import t from 'tap'
import {
  API_PREFIX,
  PASSWORD,
  bearer,
  decodeJwt,
  loginUser,
  machineToken,
  refresh,
  registerUser,
  testClient,
  type TokenPairBody
} from '../helper.js'
import { CREDENTIAL_CHANGE, SESSION_REVOKED, createStream, drain, eventOf, ssfApp } from './helper.js'

const admin = testClient('sessions:admin')
const ctx = await ssfApp(t, { extraClients: [admin], env: { REFRESH_TOKEN_TTL: '1d', SSF_STREAM_IDLE_TTL: '30d' } })
const { app, clock, receiver } = ctx
let token = ctx.token
const adminToken = await machineToken(app, admin)
const stream = await createStream(app, token)
const sidOf = (pair: TokenPairBody): string => decodeJwt(pair.access_token).payload.sid

interface Seen {
  type: string
  session?: string
  user: string
  initiating_entity: string
  reason: string
  txn: string
  body: Record<string, any>
}

/** Everything the stream delivers now (acknowledged), in order. */
async function received(): Promise<Seen[]> {
  return (await drain(app, token, stream.stream_id)).map((set) => {
    const { type, body, payload } = eventOf(set)
    const subject = payload.sub_id
    return {
      type,
      session: subject.session?.id,
      user: subject.format === 'complex' ? subject.user.sub : subject.sub,
      initiating_entity: body.initiating_entity,
      reason: body.reason_admin?.en,
      txn: payload.txn,
      body
    }
  })
}

const revoked = (pair: TokenPairBody, initiating: string, reason: string) => ({
  type: SESSION_REVOKED, session: sidOf(pair), user: pair.user.id, initiating_entity: initiating, reason
})

function post(path: string, accessToken: string, payload?: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: `${API_PREFIX}${path}`, headers: bearer(accessToken), ...(payload ? { payload } : {}) })
}

t.before(async () => {
  await received() // nothing from before the tests
})

t.test('POST /logout of the current session', async (t) => {
  const pair = await registerUser(app)
  t.equal((await post('/logout', pair.access_token)).statusCode, 204)
  t.match(await received(), [revoked(pair, 'user', 'logout')])
})

t.test('POST /logout with a refresh token of another session of the user', async (t) => {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  t.equal((await post('/logout', first.access_token, { refresh_token: second.refresh_token })).statusCode, 204)
  t.match(await received(), [revoked(second, 'user', 'logout')])
})

t.test('POST /logout with all_devices: one SET per session, sharing the txn', async (t) => {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  t.equal((await post('/logout', first.access_token, { all_devices: true })).statusCode, 204)
  const seen = await received()
  t.equal(seen.length, 2)
  t.same(seen.map((s) => s.session).sort(), [sidOf(first), sidOf(second)].sort())
  t.ok(seen.every((s) => s.type === SESSION_REVOKED && s.initiating_entity === 'user' && s.reason === 'logout'))
  t.equal(seen[0].txn, seen[1].txn, 'one logout, one transaction')
})

t.test('POST /logout with all_devices and keep_current', async (t) => {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  t.equal((await post('/logout', first.access_token, { all_devices: true, keep_current: true })).statusCode, 204)
  t.match(await received(), [revoked(second, 'user', 'logout')])
})

t.test('DELETE /sessions/:id', async (t) => {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  const res = await app.inject({ method: 'DELETE', url: `${API_PREFIX}/sessions/${sidOf(second)}`, headers: bearer(first.access_token) })
  t.equal(res.statusCode, 204)
  t.match(await received(), [revoked(second, 'user', 'session deleted')])
})

t.test('POST /revoke (RFC 7009) of a refresh token', async (t) => {
  const pair = await registerUser(app)
  const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/revoke`, payload: { token: pair.refresh_token } })
  t.equal(res.statusCode, 200)
  t.match(await received(), [revoked(pair, 'user', 'token revoked')])
})

t.test('refresh-token theft detection (reuse after the grace window)', async (t) => {
  const pair = await registerUser(app)
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200)
  clock.advance(11) // past REFRESH_REUSE_GRACE
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 401)
  t.match(await received(), [revoked(pair, 'policy', 'refresh token reuse')])
})

t.test('POST /password: credential-change, then the other sessions end', async (t) => {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  const res = await post('/password', first.access_token, { current_password: PASSWORD, new_password: 'a different horse battery staple' })
  t.equal(res.statusCode, 204)
  const seen = await received()
  t.match(seen, [
    { type: CREDENTIAL_CHANGE, session: undefined, user: first.user.id, initiating_entity: 'user', reason: 'password change' },
    revoked(second, 'user', 'password change')
  ])
  t.match(seen[0].body, { credential_type: 'password', change_type: 'update' })
})

t.test('admin: end one session, end all, disable', async (t) => {
  const first = await registerUser(app)
  const second = await loginUser(app, first.user.email)
  const third = await loginUser(app, first.user.email)
  const base = `${API_PREFIX}/admin/users/${first.user.id}`
  const call = (method: 'DELETE' | 'POST', path: string) => app.inject({ method, url: `${base}${path}`, headers: bearer(adminToken) })

  t.equal((await call('DELETE', `/sessions/${sidOf(first)}`)).statusCode, 204)
  t.match(await received(), [revoked(first, 'admin', 'ended by an administrator')])

  t.equal((await call('DELETE', '/sessions')).statusCode, 204)
  const all = await received()
  t.same(all.map((s) => s.session).sort(), [sidOf(second), sidOf(third)].sort())
  t.ok(all.every((s) => s.initiating_entity === 'admin' && s.reason === 'ended by an administrator'))

  const fourth = await loginUser(app, first.user.email)
  t.equal((await call('POST', '/disable')).statusCode, 204)
  t.match(await received(), [revoked(fourth, 'admin', 'user disabled')])
})

t.test('the clean-up of expired sessions sends nothing', async (t) => {
  const pair = await registerUser(app)
  clock.advance(86_400 + 60) // past REFRESH_TOKEN_TTL
  token = await machineToken(app, receiver) // the old one expired with the clock move
  const result = await app.runHousekeeping()
  t.ok(result.expiredSessions >= 1, 'the expired session was deleted')
  const left = await app.db.selectFrom('user_sessions').select('id').where('id', '=', sidOf(pair)).execute()
  t.same(left, [])
  t.same(await received(), [], 'no SET')
})
