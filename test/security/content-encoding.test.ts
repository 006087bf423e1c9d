// A request body with a Content-Encoding the service does not decode is a 415 before it is read
// (docs/api.md, "Conventions"): a `gzip` label on a plain JSON login used to be ignored, and the
// login succeeded.
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, errorShape, registerUser } from '../helper.js'

const { app } = await buildTestApp(t)
const pair = await registerUser(app)
const login = JSON.stringify({ email: pair.user.email, password: PASSWORD })

t.test('a plain JSON login labelled gzip (or any coding but identity) is 415, nothing done', async (t) => {
  for (const encoding of ['gzip', 'GZIP', 'deflate', 'br', 'zstd', 'x-custom', 'identity, gzip', 'gzip, identity']) {
    const res = await app.inject({
      method: 'POST',
      url: `${API_PREFIX}/login`,
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
      payload: login
    })
    t.equal(res.statusCode, 415, `Content-Encoding: ${encoding} -> 415`)
    t.match(res.json(), { ...errorShape(415), error: 'Unsupported Media Type', code: 'AUTH_UNSUPPORTED_CONTENT_ENCODING' })
    t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'], 'the standard error body')
    t.equal(res.headers['accept-encoding'], 'identity', 'says what it accepts (RFC 9110 §15.5.16)')
    t.equal(res.headers['cache-control'], 'no-store')
  }
  const events = await app.db.selectFrom('auth_events').select('kind').where('user_id', '=', pair.user.id).execute()
  t.same(events.map((e) => e.kind), ['register'], 'no login happened')
})

t.test('a body that really is gzip is refused the same way', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: `${API_PREFIX}/login`,
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    payload: gzipSync(login)
  })
  t.equal(res.statusCode, 415)
  t.equal(res.json().code, 'AUTH_UNSUPPORTED_CONTENT_ENCODING')
})

t.test('identity, or no body at all, is fine', async (t) => {
  for (const encoding of ['identity', 'Identity', ' identity ']) {
    const res = await app.inject({
      method: 'POST',
      url: `${API_PREFIX}/login`,
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
      payload: login
    })
    t.equal(res.statusCode, 200, `Content-Encoding: ${JSON.stringify(encoding)} -> 200`)
  }
  const me = await app.inject({ method: 'GET', url: `${API_PREFIX}/me`, headers: { ...bearer(pair.access_token), 'content-encoding': 'gzip' } })
  t.equal(me.statusCode, 200, 'a GET without a body is not refused for the header alone')
  const logout = await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: { ...bearer(pair.access_token), 'content-encoding': 'gzip' } })
  t.equal(logout.statusCode, 204, 'a logout without a body neither')
})

t.test('the Bearer check of /logout still answers first', async (t) => {
  const res = await app.inject({
    method: 'POST',
    url: `${API_PREFIX}/logout`,
    headers: { authorization: 'Bearer nope', 'content-type': 'application/json', 'content-encoding': 'gzip' },
    payload: '{}'
  })
  t.equal(res.statusCode, 401)
})
