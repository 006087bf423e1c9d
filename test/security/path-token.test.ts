// A token put in the URL path is neither logged nor echoed (docs/security.md, "Internal endpoints
// and headers"): the query string was redacted from the log, the path was not, and the 404 body
// quoted it.
import t from 'tap'
import { redactPath } from '../../src/logging.js'
import { API_PREFIX, bearer, buildTestApp, captureLog, registerUser } from '../helper.js'

t.test('redactPath: long opaque segments go, route segments and UUIDs stay', async (t) => {
  t.equal(redactPath('/api/v1/auth/verify'), '/api/v1/auth/verify')
  t.equal(redactPath('/.well-known/jwks.json'), '/.well-known/jwks.json')
  t.equal(redactPath('/api/v1/auth/sessions/0b7c3f8e-6a57-4f6e-9d1e-2f4c8a9b1c2d'), '/api/v1/auth/sessions/0b7c3f8e-6a57-4f6e-9d1e-2f4c8a9b1c2d')
  t.equal(redactPath('/api/v1/auth/verify/eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln'), '/api/v1/auth/verify/[redacted]')
  t.equal(redactPath('/sk_live_0123456789abcdefghij/x'), '/[redacted]/x')
  t.equal(redactPath('/a/short/path/'), '/a/short/path/')
})

t.test('neither the log nor the 404 body carries a token from the path, matched route or not', async (t) => {
  const log = captureLog()
  const { app } = await buildTestApp(t, { env: { LOG_LEVEL: 'trace' }, logStream: log.stream })
  const pair = await registerUser(app)
  const token = pair.access_token

  const requests = [
    { method: 'GET', url: `/${token}` },
    { method: 'GET', url: `${API_PREFIX}/verify/${token}` },
    { method: 'POST', url: `${API_PREFIX}/${token}/logout?token=${token}` },
    // A matched, parametric route: the session id is where the token went.
    { method: 'DELETE', url: `${API_PREFIX}/sessions/${token.slice(0, 90)}`, headers: bearer(token) },
    { method: 'GET', url: `/docs/${token}` }
  ] as const
  for (const request of requests) {
    const res = await app.inject(request)
    t.ok(res.statusCode === 404 || res.statusCode === 400, `${request.method} ${request.url.slice(0, 40)}…: ${res.statusCode}`)
    t.notOk(res.body.includes(token.slice(0, 20)), 'the body does not quote it')
  }
  const text = log.text()
  t.notOk(text.includes(token.slice(0, 20)), 'no token in the log')
  t.notMatch(text, /eyJ[\w-]{10,}/, 'not even a JWT fragment')
  t.match(text, /"url":"\/\[redacted\]"/, 'an unknown route is logged with the token redacted')
  t.match(text, /"url":"\/api\/v1\/auth\/verify\/\[redacted\]"/)
  t.match(text, /"url":"\/api\/v1\/auth\/\[redacted\]\/logout\?\[redacted\]"/)
  t.match(text, /"url":"\/api\/v1\/auth\/sessions\/\[redacted\]"/, 'and a parameter of a matched route')
})
