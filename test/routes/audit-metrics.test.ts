// The append-only audit trail (auth_events) and the Prometheus metrics.
import t from 'tap'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, decodeJwt, refresh, registerUser, uniqueEmail } from '../helper.js'

const UA = 'audit-test/1.0'

t.test('every auth event is recorded with who, which session, where and when; never a secret', async (t) => {
  const { app, clock } = await buildTestApp(t)
  const post = (url: string, payload?: object, token?: string) =>
    app.inject({
      method: 'POST',
      url: `${API_PREFIX}${url}`,
      headers: { 'user-agent': UA, ...(token ? bearer(token) : {}) },
      remoteAddress: '198.51.100.7',
      ...(payload ? { payload } : {})
    })

  const email = uniqueEmail('audit')
  const registered = (await post('/register', { email, password: PASSWORD })).json()
  const userId = registered.user.id
  t.equal((await post('/login', { email: uniqueEmail('nobody'), password: PASSWORD })).statusCode, 401)
  t.equal((await post('/login', { email, password: 'not the password' })).statusCode, 401)
  const phone = (await post('/login', { email, password: PASSWORD })).json()
  const tablet = (await post('/login', { email, password: PASSWORD })).json()
  const laptop = (await post('/login', { email, password: PASSWORD })).json()

  t.equal((await post('/logout', undefined, phone.access_token)).statusCode, 204)
  const tabletSid = decodeJwt(tablet.access_token).payload.sid
  const del = await app.inject({ method: 'DELETE', url: `${API_PREFIX}/sessions/${tabletSid}`, headers: { ...bearer(laptop.access_token), 'user-agent': UA } })
  t.equal(del.statusCode, 204)
  t.equal((await post('/revoke', { token: laptop.refresh_token })).statusCode, 200)

  const again = (await post('/login', { email, password: PASSWORD })).json()
  await refresh(app, again.refresh_token)
  clock.advance(11)
  t.equal((await refresh(app, again.refresh_token)).statusCode, 401, 'theft detected')

  const other = (await post('/login', { email, password: PASSWORD })).json()
  t.equal((await post('/password', { current_password: PASSWORD, new_password: 'a brand new password' }, registered.access_token)).statusCode, 204)
  t.equal((await post('/logout', { all_devices: true }, registered.access_token)).statusCode, 204)

  const events = await app.db.selectFrom('auth_events').selectAll().where('user_id', '=', userId).orderBy('id').execute()
  t.same(
    events.map((e) => [e.kind, e.detail?.scope ?? null]),
    [
      ['register', null],
      ['login_failed', null],
      ['login', null],
      ['login', null],
      ['login', null],
      ['logout', 'current'],
      ['session_deleted', null],
      ['revoke', null],
      ['login', null],
      ['refresh_reuse', null],
      ['login', null],
      ['password_changed', null],
      ['logout', 'password_change'],
      ['logout', 'all_devices']
    ]
  )
  const byKind = (kind: string) => events.filter((e) => e.kind === kind)
  t.equal(byKind('logout')[0].session_id, decodeJwt(phone.access_token).payload.sid, 'the session that was logged out')
  t.equal(byKind('session_deleted')[0].session_id, tabletSid)
  t.equal(byKind('logout')[1].session_id, decodeJwt(other.access_token).payload.sid, 'password change ended the other session')
  t.match(byKind('login')[0], { ip: '198.51.100.7', user_agent: UA })
  t.ok(events.every((e) => e.occurred_at instanceof Date))

  const unknown = await app.db.selectFrom('auth_events').selectAll().where('kind', '=', 'login_failed').where('user_id', 'is', null).execute()
  t.ok(unknown.some((e) => String(e.detail?.email).startsWith('nobody-')), 'a failed login of an unknown email is recorded too')

  const everything = JSON.stringify(await app.db.selectFrom('auth_events').selectAll().execute())
  for (const secret of [PASSWORD, 'not the password', 'a brand new password', registered.access_token, registered.refresh_token, phone.refresh_token]) {
    t.notOk(everything.includes(secret), 'no token or password is stored')
  }
  t.notMatch(everything, /eyJ/, 'nothing that looks like a JWT')
})

t.test('history outlives the sessions and the user; rows cannot be altered', async (t) => {
  const { app } = await buildTestApp(t)
  const pair = await registerUser(app)
  await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  await app.db.deleteFrom('users').where('id', '=', pair.user.id).execute()
  const left = await app.db.selectFrom('auth_events').select('kind').where('user_id', '=', pair.user.id).orderBy('id').execute()
  t.same(left.map((e) => e.kind), ['register', 'logout'])
  await t.rejects(
    app.db.updateTable('auth_events').set({ kind: 'login' }).where('user_id', '=', pair.user.id).execute(),
    /append-only/
  )
})

t.test('AUDIT_RETENTION: housekeeping deletes older events only', async (t) => {
  const { app, clock } = await buildTestApp(t, { env: { AUDIT_RETENTION: '30d' } , ownDatabase: true })
  const pair = await registerUser(app)
  clock.advance(31 * 86_400)
  await app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email: pair.user.email, password: PASSWORD } })
  const result = await app.runHousekeeping()
  t.ok(result.auditEvents >= 1, `${result.auditEvents} old event(s) deleted`)
  const left = await app.db.selectFrom('auth_events').select('kind').where('user_id', '=', pair.user.id).execute()
  t.same(left.map((e) => e.kind), ['login'])
})

t.test('GET /metrics: Prometheus text with per-route latency and the auth counters', async (t) => {
  const { app } = await buildTestApp(t)
  const pair = await registerUser(app)
  await app.inject({ method: 'GET', url: `${API_PREFIX}/me`, headers: bearer(pair.access_token) })
  await app.inject({ method: 'GET', url: `${API_PREFIX}/me`, headers: bearer(pair.access_token) })
  await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  await app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email: pair.user.email, password: 'wrong password' } })
  await app.inject({ method: 'HEAD', url: '/health/live' })
  await app.inject({ method: 'GET', url: '/no/such/route' })
  await app.inject({ method: 'GET', url: '/metrics' })

  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  const text = res.body
  t.match(text, /http_request_duration_seconds_bucket\{[^}]*route="\/api\/v1\/auth\/me"[^}]*status_code="200"/)
  t.match(text, /http_request_duration_seconds_count\{[^}]*route="\/api\/v1\/auth\/logout"[^}]*\} 1/)
  t.match(text, /http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/auth\/me",status_code="200"\} 2/)
  t.match(text, /http_request_duration_seconds_count\{method="POST",route="\/api\/v1\/auth\/login",status_code="401"\} 1/)
  t.notMatch(text, /http_request_duration_seconds_count\{method="HEAD"/, 'HEAD requests are not timed')
  t.notMatch(text, /http_request_duration_seconds_count\{[^}]*route="\/metrics"/, 'nor the scrapes')
  t.notMatch(text, /http_request_duration_seconds_count\{[^}]*route="\/no/, 'nor unknown routes')
  t.match(text, /auth_events_total\{kind="register"\} 1/)
  t.match(text, /auth_events_total\{kind="logout"\} 1/)
  t.match(text, /auth_events_total\{kind="login_failed"\} 1/)
  t.match(text, /auth_session_liveness_checks_total\{source="cache"\} [1-9]/)
  t.match(text, /auth_session_liveness_queries_total [1-9]/, 'the database answers came from queries')
  t.match(text, /auth_revocation_notifications_total/)
  t.match(text, /process_resident_memory_bytes/)
  t.notMatch(text, /eyJ/, 'no token in metrics')
})
