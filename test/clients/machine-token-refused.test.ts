// A machine client's access token is never a user's (docs/api.md, "Machine clients"): refused at
// every user endpoint, and a user's token is refused at the admin endpoints. A machine token needs
// the route's scope (403 insufficient_scope, RFC 6750 §3.1) and a client still in the file.
import type { InjectOptions } from 'fastify'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import {
  API_PREFIX,
  PASSWORD,
  bearer,
  buildTestApp,
  countSessions,
  decodeJwt,
  form,
  introspectWith,
  loginUser,
  machineToken,
  me,
  refresh,
  registerUser,
  testClient,
  type TokenPairBody
} from '../helper.js'

const admin = testClient('introspect sessions:admin')
const introspector = testClient('introspect')
const { app, privateKeyPem } = await buildTestApp(t, { clients: [admin, introspector] })
const adminToken = await machineToken(app, admin)

type Inject = InjectOptions

/** Every user endpoint that takes a Bearer access token, for this user and token. */
function userEndpoints(user: TokenPairBody, token: string): Record<string, Inject> {
  const sid = decodeJwt(user.access_token).payload.sid
  return {
    'GET /me': { method: 'GET', url: `${API_PREFIX}/me`, headers: bearer(token) },
    'POST /logout': { method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(token) },
    'POST /logout all_devices': { method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(token), payload: { all_devices: true } },
    'GET /verify': { method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(token) },
    'GET /sessions': { method: 'GET', url: `${API_PREFIX}/sessions`, headers: bearer(token) },
    'DELETE /sessions/:id': { method: 'DELETE', url: `${API_PREFIX}/sessions/${sid}`, headers: bearer(token) },
    'POST /password': { method: 'POST', url: `${API_PREFIX}/password`, headers: bearer(token), payload: { current_password: PASSWORD, new_password: 'another horse battery staple' } }
  }
}

/** 401 with `WWW-Authenticate: Bearer error="invalid_token"`, in the API's error shape. */
function invalidToken(t: Test, res: Awaited<ReturnType<App['inject']>>, name: string) {
  t.equal(res.statusCode, 401, `${name}: 401`)
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', `${name}: Bearer error="invalid_token"`)
  t.match(res.json(), { statusCode: 401, error: 'Unauthorized', message: String }, `${name}: the standard error shape`)
}

/** The user still has every session and its tokens still work: nothing was done on the machine token's behalf. */
async function untouched(t: Test, target: App, user: TokenPairBody, sessions: number, name: string) {
  t.equal(await countSessions(target, user.user.id), sessions, `${name}: every session is still there`)
  t.equal((await me(target, user.access_token)).statusCode, 200, `${name}: the user's access token still works`)
}

t.test('a machine token at every user endpoint: 401 invalid_token, and nothing happens', async (t) => {
  const user = await registerUser(app)
  await loginUser(app, user.user.email)
  for (const [name, request] of Object.entries(userEndpoints(user, adminToken))) {
    invalidToken(t, await app.inject(request), name)
  }
  await untouched(t, app, user, 2, 'after them all')
  t.equal((await loginUser(app, user.user.email)).user.id, user.user.id, 'the password did not change')
})

t.test('a machine token as a refresh token at /refresh: 401, and as a token at /revoke: 200 but nothing revoked', async (t) => {
  const user = await registerUser(app)
  const res = await refresh(app, adminToken)
  t.equal(res.statusCode, 401, '/refresh')
  t.match(res.json(), { statusCode: 401, error: 'Unauthorized', message: String })
  t.notOk(res.json().access_token, 'no tokens')
  for (const hint of [undefined, 'access_token', 'refresh_token']) {
    const revoke = await app.inject({ method: 'POST', url: `${API_PREFIX}/revoke`, payload: { token: adminToken, ...(hint ? { token_type_hint: hint } : {}) } })
    t.equal(revoke.statusCode, 200, `/revoke (hint ${hint}): 200`)
    t.equal(revoke.body, '', `/revoke (hint ${hint}): empty body`)
  }
  const stillGood = await app.inject({ method: 'GET', url: `${API_PREFIX}/admin/users?email=${encodeURIComponent(user.user.email)}`, headers: bearer(adminToken) })
  t.equal(stillGood.statusCode, 200, 'the machine token was not revoked: it still opens the admin endpoints')
  await untouched(t, app, user, 1, 'the user')
})

t.test("a machine token in a user's session's stead: a client named like a user id, and a shared audience", async (t) => {
  // The worst case: the client id is a user's id and the users' audience is the issuer itself, so
  // only the claims tell the kinds apart (a machine token has no sid; a user's has one).
  const { iss } = decodeJwt(adminToken).payload
  const { app: shared, privateKeyPem: key } = await buildTestApp(t, { env: { JWT_AUDIENCE: iss } })
  const user = await registerUser(shared)
  const twin = testClient('introspect sessions:admin', user.user.id)
  const { app: withTwin } = await buildTestApp(t, { clients: [twin], env: { JWT_AUDIENCE: iss, JWT_PRIVATE_KEY: key } })
  const twinToken = await machineToken(withTwin, twin)
  const { payload } = decodeJwt(twinToken)
  t.equal(payload.sub, user.user.id, "the machine token's sub is the user's id")
  t.equal(payload.aud, decodeJwt(user.access_token).payload.aud, 'and its aud is the users’ audience')
  // The machine token is refused before any database is asked: the same on either engine.
  for (const [name, request] of Object.entries(userEndpoints(user, twinToken))) invalidToken(t, await withTwin.inject(request), name)
  invalidToken(t, await shared.inject(userEndpoints(user, twinToken)['GET /me']), 'GET /me where the user lives')
  const userAtAdmin = await withTwin.inject({ method: 'GET', url: `${API_PREFIX}/admin/users/${user.user.id}/sessions`, headers: bearer(user.access_token) })
  invalidToken(t, userAtAdmin, "and the user's token at the admin endpoints")
})

/** Every admin endpoint, for a user id and a session id. */
function adminEndpoints(userId: string, sid: string, email: string): Record<string, Inject> {
  const base = `${API_PREFIX}/admin/users`
  return {
    'GET /admin/users': { method: 'GET', url: `${base}?email=${encodeURIComponent(email)}` },
    'GET /admin/users/:id/sessions': { method: 'GET', url: `${base}/${userId}/sessions` },
    'DELETE /admin/users/:id/sessions': { method: 'DELETE', url: `${base}/${userId}/sessions` },
    'DELETE /admin/users/:id/sessions/:sid': { method: 'DELETE', url: `${base}/${userId}/sessions/${sid}` },
    'POST /admin/users/:id/disable': { method: 'POST', url: `${base}/${userId}/disable` },
    'POST /admin/users/:id/enable': { method: 'POST', url: `${base}/${userId}/enable` }
  }
}

const withToken = (request: Inject, token: string | undefined): Inject =>
  ({ ...request, headers: token === undefined ? {} : bearer(token) })

t.test("a user's tokens at the admin endpoints: 401, and nothing happens", async (t) => {
  const user = await registerUser(app)
  const endpoints = adminEndpoints(user.user.id, decodeJwt(user.access_token).payload.sid, user.user.email)
  for (const [name, request] of Object.entries(endpoints)) {
    invalidToken(t, await app.inject(withToken(request, user.access_token)), `${name}, the user's access token`)
    invalidToken(t, await app.inject(withToken(request, user.refresh_token)), `${name}, the user's refresh token`)
    const none = await app.inject(withToken(request, undefined))
    t.equal(none.statusCode, 401, `${name}, no token: 401`)
    t.equal(none.headers['www-authenticate'], 'Bearer', `${name}, no token: a plain Bearer challenge`)
  }
  await untouched(t, app, user, 1, 'the user')
  t.equal((await loginUser(app, user.user.email)).user.id, user.user.id, 'and is not disabled')
})

t.test('a machine token without sessions:admin: 403 insufficient_scope, and nothing happens', async (t) => {
  const user = await registerUser(app)
  const endpoints = adminEndpoints(user.user.id, decodeJwt(user.access_token).payload.sid, user.user.email)
  const narrow = {
    'a client with introspect only': await machineToken(app, introspector),
    'an admin client whose token asked for introspect only': await machineToken(app, admin, 'introspect')
  }
  for (const [who, token] of Object.entries(narrow)) {
    for (const [name, request] of Object.entries(endpoints)) {
      const res = await app.inject(withToken(request, token))
      t.equal(res.statusCode, 403, `${who}, ${name}: 403`)
      t.equal(res.headers['www-authenticate'], 'Bearer error="insufficient_scope", scope="sessions:admin"', `${who}, ${name}: the challenge names the scope`)
      t.match(res.json(), { statusCode: 403, error: 'Forbidden', message: String }, `${who}, ${name}: the standard error shape`)
    }
  }
  await untouched(t, app, user, 1, 'the user')
  t.equal((await app.inject(withToken(endpoints['GET /admin/users'], adminToken))).statusCode, 200, 'the admin token itself does get in')
})

t.test('a token whose client was removed from the file, or lost the scope there: refused', async (t) => {
  // A second instance on the same key (and, on PostgreSQL, the same database) after the operator
  // edited the file: the admin client is gone, the introspector lost nothing, a third one was narrowed.
  const narrowed = testClient('introspect sessions:admin')
  const narrowedToken = await (async () => {
    const { app: before } = await buildTestApp(t, { clients: [narrowed], env: { JWT_PRIVATE_KEY: privateKeyPem } })
    return machineToken(before, narrowed)
  })()
  const introspectorToken = await machineToken(app, introspector)
  const { app: after } = await buildTestApp(t, {
    clients: [introspector, { ...narrowed, scope: 'introspect' }],
    env: { JWT_PRIVATE_KEY: privateKeyPem }
  })
  const user = await registerUser(after)
  const endpoints = adminEndpoints(user.user.id, decodeJwt(user.access_token).payload.sid, user.user.email)
  for (const [name, request] of Object.entries(endpoints)) {
    invalidToken(t, await after.inject(withToken(request, adminToken)), `removed client, ${name}`)
    const res = await after.inject(withToken(request, narrowedToken))
    t.equal(res.statusCode, 403, `narrowed client, ${name}: 403 although its token says sessions:admin`)
  }
  const introspection = form({ token: user.access_token })
  const removed = await after.inject({ method: 'POST', url: `${API_PREFIX}/introspect`, payload: introspection.payload, headers: { ...introspection.headers, ...bearer(adminToken) } })
  t.equal(removed.statusCode, 401, 'removed client at /introspect: 401')
  t.equal(removed.json().error, 'invalid_token', 'as an OAuth error')
  t.match(removed.headers['www-authenticate'], /^Bearer error="invalid_token"/)
  const kept = await after.inject({ method: 'POST', url: `${API_PREFIX}/introspect`, payload: introspection.payload, headers: { ...introspection.headers, ...bearer(introspectorToken) } })
  t.equal(kept.statusCode, 200, 'a client still in the file keeps its token across the restart')
  t.equal(kept.json().active, true)
  const credentials = await introspectWith(after, admin, user.access_token)
  t.equal(credentials.statusCode, 401, "the removed client's id and secret are refused too")
  t.equal(credentials.json().error, 'invalid_client')
  await untouched(t, after, user, 1, 'the user')
  const known = await registerUser(app)
  const first = await app.inject(withToken(adminEndpoints(known.user.id, '', known.user.email)['GET /admin/users'], adminToken))
  t.equal(first.statusCode, 200, 'the first instance, whose file still has the client, still takes its token')
})
