// JSON log lines that carry the request id (an incoming x-request-id is honoured), and no
// token, password or cookie ever reaches the log, whatever the client sends.
import t from 'tap'
import { API_PREFIX, bearer, buildTestApp, captureLog, refresh, registerUser, uniqueEmail } from '../helper.js'

t.test('tokens, passwords and cookies never appear in the log, even at trace level', async (t) => {
  const log = captureLog()
  const { app, clock } = await buildTestApp(t, { env: { LOG_LEVEL: 'trace' }, logStream: log.stream })
  const email = uniqueEmail('logs')
  const secretPassword = 'Sup3r-Secret-Passw0rd!'
  const pair = await registerUser(app, email, secretPassword)
  const inject = app.inject.bind(app)

  await inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password: secretPassword } })
  await inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password: `${secretPassword}-wrong` } })
  await inject({ method: 'GET', url: `${API_PREFIX}/me`, headers: { ...bearer(pair.access_token), cookie: `session=${pair.refresh_token}` } })
  await inject({ method: 'GET', url: `${API_PREFIX}/verify?access_token=${pair.access_token}`, headers: bearer(pair.access_token) })
  // Malformed JSON that quotes the password: the parser's message would echo it.
  await inject({ method: 'POST', url: `${API_PREFIX}/login`, headers: { 'content-type': 'application/json' }, payload: `{"email":"${email}","password":"${secretPassword}"` })
  await inject({ method: 'POST', url: `${API_PREFIX}/password`, headers: bearer(pair.access_token), payload: { current_password: secretPassword, new_password: `${secretPassword}-new` } })
  const rotated = await refresh(app, pair.refresh_token)
  clock.advance(60)
  await refresh(app, pair.refresh_token) // reuse: theft detection is logged
  await inject({ method: 'POST', url: `${API_PREFIX}/revoke`, payload: { token: rotated.json().refresh_token } })
  await inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token), payload: { refresh_token: pair.refresh_token } })
  await inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: { authorization: `Bearer ${pair.access_token}x` } })

  const text = log.text()
  t.ok(log.raw.length > 20, `${log.raw.length} lines captured`)
  for (const secret of [secretPassword, pair.access_token, pair.refresh_token, rotated.json().refresh_token]) {
    t.notOk(text.includes(secret), `the log does not contain ${secret.slice(0, 12)}…`)
  }
  // Not even a fragment: no JWT-shaped string at all.
  t.notMatch(text, /eyJ[\w-]{10,}/, 'no JWT fragment')
  t.notMatch(text, /Sup3r-Secret/, 'no password fragment')
  t.match(text, /auth event: refresh_reuse/, 'security events are logged')
  t.match(text, /"url":"\/api\/v1\/auth\/verify\?\[redacted\]"/, 'query strings are redacted')
})

t.test('one JSON line per request with a request id; an incoming x-request-id is honoured and echoed', async (t) => {
  const log = captureLog()
  const { app } = await buildTestApp(t, { env: { LOG_LEVEL: 'info' }, logStream: log.stream })
  const traced = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'gw-trace-42' } })
  t.equal(traced.headers['x-request-id'], 'gw-trace-42')
  const own = await app.inject({ method: 'GET', url: '/health/live' })
  t.match(own.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a UUID when none is sent')
  const hostile = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'x'.repeat(500) } })
  t.match(hostile.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'an oversized or odd id is replaced')

  const entries = log.lines
  const completed = entries.filter((entry) => entry.msg === 'request completed')
  t.equal(completed.length, 3, 'one completion line per request')
  t.ok(completed.some((entry) => entry.reqId === 'gw-trace-42'))
  t.ok(completed.every((entry) => typeof entry.responseTime === 'number' && entry.res.statusCode === 200))
})
