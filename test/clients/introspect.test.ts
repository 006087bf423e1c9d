// POST /api/v1/auth/introspect (RFC 7662; the contract's "POST /introspect" and "Machine clients"):
// who may call it (Basic credentials or a Bearer machine token with `introspect`), every error,
// the exact answer for an active access or refresh token, `{ "active": false }` and nothing else
// for every token that is not live, and no database round trip once the answer is known.
import t from 'tap'
import type { Test } from 'tap'
import type { App } from '../../src/app.js'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import {
  API_PREFIX,
  basicAuth,
  bearer,
  buildTestApp,
  decodeJwt,
  form,
  introspectWith,
  loginUser,
  machineToken,
  refresh,
  registerUser,
  signWith,
  testClient,
  type TestClient
} from '../helper.js'

const introspector = testClient('introspect')
const adminOnly = testClient('sessions:admin')
const both = testClient('introspect sessions:admin')
const clients = [introspector, adminOnly, both]
const { app, privateKeyPem } = await buildTestApp(t, { clients })
const url = `${API_PREFIX}/introspect`
const INACTIVE = '{"active":false}'

/** POST /introspect with whatever headers and form fields a case needs. */
function introspectRaw(fields: Record<string, string>, headers: Record<string, string> = {}, target: App = app) {
  const body = form(fields)
  return target.inject({ method: 'POST', url, payload: body.payload, headers: { ...body.headers, ...headers } })
}

/** The answer RFC 7662 gives for an active token: exactly these members, from the token's claims. */
function activeBody(token: string, tokenType: 'access_token' | 'refresh_token', clientId: string) {
  const { payload } = decodeJwt(token)
  return {
    active: true,
    token_type: tokenType,
    sub: payload.sub,
    sid: payload.sid,
    client_id: clientId,
    iss: payload.iss,
    aud: payload.aud,
    exp: payload.exp,
    iat: payload.iat,
    jti: payload.jti
  }
}

/** Exactly `{ "active": false }`: 200, nothing else in the body, not cacheable. */
async function assertInactive(t: Test, token: string, label: string, client: TestClient = introspector, hint?: string, target: App = app) {
  const res = await introspectWith(target, client, token, hint)
  t.equal(res.statusCode, 200, `${label}: 200`)
  t.strictSame(res.json(), { active: false }, `${label}: inactive`)
  t.equal(res.body, INACTIVE, `${label}: nothing but active: false`)
  t.match(res.headers['cache-control'], /no-store/, `${label}: no-store`)
}

/** The same token signed again with `key`, header and claims changed as given. */
function resigned(token: string, key: string, claims: Record<string, unknown> = {}, headerChanges: Record<string, unknown> = {}): string {
  const { header, payload } = decodeJwt(token)
  return signWith(key, { ...header, ...headerChanges }, { ...payload, ...claims })
}

const user = await registerUser(app)
const userClientId = decodeJwt(user.access_token).payload.client_id as string

t.test('caller: Basic credentials or a Bearer machine token with introspect', async (t) => {
  const expected = activeBody(user.access_token, 'access_token', userClientId)

  const byBasic = await introspectWith(app, introspector, user.access_token)
  t.equal(byBasic.statusCode, 200, 'Basic')
  t.strictSame(byBasic.json(), expected)
  t.match(byBasic.headers['cache-control'], /no-store/)

  const token = await machineToken(app, introspector)
  const byBearer = await introspectRaw({ token: user.access_token }, bearer(token))
  t.equal(byBearer.statusCode, 200, 'Bearer machine token')
  t.strictSame(byBearer.json(), expected)
  t.match(byBearer.headers['cache-control'], /no-store/)

  const byBoth = await introspectWith(app, both, user.access_token)
  t.equal(byBoth.statusCode, 200, 'a client with introspect among other scopes')
  t.strictSame(byBoth.json(), expected)
  const bothToken = await machineToken(app, both, 'introspect')
  t.equal((await introspectRaw({ token: user.access_token }, bearer(bothToken))).statusCode, 200, 'its token narrowed to introspect')
})

t.test('a client without introspect: 403 insufficient_scope, by Basic and by Bearer', async (t) => {
  const byBasic = await introspectWith(app, adminOnly, user.access_token)
  t.equal(byBasic.statusCode, 403, 'Basic')
  t.equal(byBasic.json().error, 'insufficient_scope')
  t.notOk('active' in byBasic.json(), 'nothing about the token')

  const token = await machineToken(app, adminOnly)
  const byBearer = await introspectRaw({ token: user.access_token }, bearer(token))
  t.equal(byBearer.statusCode, 403, 'Bearer')
  t.equal(byBearer.json().error, 'insufficient_scope')
  t.match(byBearer.headers['www-authenticate'], /^Bearer error="insufficient_scope"/)

  // A client that has introspect, but whose token was asked for another scope only.
  const narrowed = await machineToken(app, both, 'sessions:admin')
  const byNarrowed = await introspectRaw({ token: user.access_token }, bearer(narrowed))
  t.equal(byNarrowed.statusCode, 403, 'a token without the scope, whatever the client may have')
  t.equal(byNarrowed.json().error, 'insufficient_scope')
  t.match(byNarrowed.headers['www-authenticate'], /^Bearer error="insufficient_scope"/)
})

t.test('no credentials: 401 invalid_client with a challenge', async (t) => {
  const res = await introspectRaw({ token: user.access_token })
  t.equal(res.statusCode, 401)
  t.equal(res.json().error, 'invalid_client')
  t.ok(res.headers['www-authenticate'], 'WWW-Authenticate is set')
  t.match(res.headers['www-authenticate'], /^Basic realm="/)
  t.match(res.headers['cache-control'], /no-store/)
})

t.test('a bad Bearer token, or a user access token as the Bearer: 401 invalid_token', async (t) => {
  const cases: Record<string, string> = {
    garbage: 'not-a-token',
    "a user's access token": user.access_token,
    "a user's refresh token": user.refresh_token,
    'a machine token signed by another key': resigned(await machineToken(app, introspector), generateSigningKeyPem('EdDSA'))
  }
  for (const [label, token] of Object.entries(cases)) {
    const res = await introspectRaw({ token: user.access_token }, bearer(token))
    t.equal(res.statusCode, 401, label)
    t.equal(res.json().error, 'invalid_token', label)
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', label)
  }
})

t.test('wrong credentials: 401 invalid_client', async (t) => {
  const cases: Record<string, Record<string, string>> = {
    'wrong secret': basicAuth({ clientId: introspector.clientId, secret: `${introspector.secret}x` }),
    "another client's secret": basicAuth({ clientId: introspector.clientId, secret: adminOnly.secret }),
    'unknown client': basicAuth({ clientId: 'nobody', secret: introspector.secret }),
    'malformed Basic': { authorization: 'Basic !!!' }
  }
  for (const [label, headers] of Object.entries(cases)) {
    const res = await introspectRaw({ token: user.access_token }, headers)
    t.equal(res.statusCode, 401, label)
    t.equal(res.json().error, 'invalid_client', label)
    t.match(res.headers['www-authenticate'], /^Basic realm="/, label)
    t.notOk('active' in res.json(), `${label}: nothing about the token`)
  }
})

t.test('a malformed request: 400 invalid_request, a JSON body 415', async (t) => {
  const missing = await introspectRaw({}, basicAuth(introspector))
  t.equal(missing.statusCode, 400, 'no token parameter')
  t.equal(missing.json().error, 'invalid_request')

  const hintOnly = await introspectRaw({ token_type_hint: 'access_token' }, basicAuth(introspector))
  t.equal(hintOnly.statusCode, 400, 'a hint but no token')
  t.equal(hintOnly.json().error, 'invalid_request')

  const twice = await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...basicAuth(introspector) },
    payload: `token=${user.access_token}&token=${user.refresh_token}`
  })
  t.equal(twice.statusCode, 400, 'token sent twice')
  t.equal(twice.json().error, 'invalid_request')

  const json = await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', ...basicAuth(introspector) },
    payload: JSON.stringify({ token: user.access_token })
  })
  t.equal(json.statusCode, 415, 'JSON body')
  t.equal(typeof json.json().error, 'string', 'an OAuth error body')
  t.notOk('active' in json.json())
})

t.test('an active access token: exactly the RFC 7662 members, from its claims', async (t) => {
  const res = await introspectWith(app, introspector, user.access_token)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.strictSame(body, activeBody(user.access_token, 'access_token', userClientId))
  t.strictSame(Object.keys(body).sort(), ['active', 'aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub', 'token_type'])
  t.equal(body.sub, user.user.id, 'sub is the user')
  t.match(body.sid, /^[0-9a-f-]{36}$/, 'sid is the session')
  t.equal(typeof body.exp, 'number')
  t.ok(body.exp > body.iat)
})

t.test('an active refresh token: the same members with token_type refresh_token', async (t) => {
  const session = await loginUser(app, user.user.email)
  const res = await introspectWith(app, introspector, session.refresh_token)
  t.equal(res.statusCode, 200)
  t.strictSame(res.json(), activeBody(session.refresh_token, 'refresh_token', userClientId))
  t.equal(res.json().client_id, userClientId, "the client_id of the service's own user tokens")
  t.equal(res.json().sid, decodeJwt(session.access_token).payload.sid, 'the session of the pair')
  t.match(res.headers['cache-control'], /no-store/)
})

t.test('token_type_hint: either way round, and an unknown hint is ignored', async (t) => {
  const session = await loginUser(app, user.user.email)
  const access = activeBody(session.access_token, 'access_token', userClientId)
  const refreshBody = activeBody(session.refresh_token, 'refresh_token', userClientId)
  for (const hint of ['access_token', 'refresh_token', 'id_token', '', 'ACCESS_TOKEN']) {
    const a = await introspectWith(app, introspector, session.access_token, hint)
    t.equal(a.statusCode, 200, `access token, hint "${hint}"`)
    t.strictSame(a.json(), access, `access token, hint "${hint}"`)
    const r = await introspectWith(app, introspector, session.refresh_token, hint)
    t.equal(r.statusCode, 200, `refresh token, hint "${hint}"`)
    t.strictSame(r.json(), refreshBody, `refresh token, hint "${hint}"`)
    await assertInactive(t, 'garbage', `garbage, hint "${hint}"`, introspector, hint)
  }
})

t.test('{ "active": false } and nothing else for every token that is not live', async (t) => {
  const session = await loginUser(app, user.user.email)
  const otherKey = generateSigningKeyPem('EdDSA')
  const { access_token: access, refresh_token: refreshToken } = session
  const cases: Record<string, string> = {
    garbage: 'garbage',
    'a JWT-shaped string': 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.AAAA',
    'a tampered signature': access.slice(0, -4) + (access.endsWith('AAAA') ? 'BBBB' : 'AAAA'),
    'an access token signed by another key': resigned(access, otherKey),
    'a refresh token signed by another key': resigned(refreshToken, otherKey),
    'an access token with another iss (right key)': resigned(access, privateKeyPem, { iss: 'https://evil.example' }),
    'a refresh token with another iss (right key)': resigned(refreshToken, privateKeyPem, { iss: 'https://evil.example' }),
    'an access token with another aud (right key)': resigned(access, privateKeyPem, { aud: 'another-api' }),
    'a refresh token with another aud (right key)': resigned(refreshToken, privateKeyPem, { aud: 'another-api' }),
    'an access token with typ JWT (right key)': resigned(access, privateKeyPem, {}, { typ: 'JWT' }),
    'a refresh token with typ at+jwt (right key)': resigned(refreshToken, privateKeyPem, {}, { typ: 'at+jwt' }),
    'an access token with typ refresh+jwt (right key)': resigned(access, privateKeyPem, {}, { typ: 'refresh+jwt' }),
    'an access token with alg none': `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${access.split('.')[1]}.`,
    'a machine token': await machineToken(app, introspector),
    "another client's machine token": await machineToken(app, adminOnly)
  }
  t.equal(resigned(access, privateKeyPem), access, 'the re-signer reproduces a genuine token exactly')
  for (const [label, token] of Object.entries(cases)) {
    await assertInactive(t, token, label)
    await assertInactive(t, token, `${label}, hint refresh_token`, introspector, 'refresh_token')
  }
  // The genuine pair is still active: the cases above were refused for what they are.
  t.equal((await introspectWith(app, introspector, access)).json().active, true)
  t.equal((await introspectWith(app, introspector, refreshToken)).json().active, true)
})

t.test('an expired access token is inactive, also once cached as active', async (t) => {
  const { app: own, clock } = await buildTestApp(t, { clients: [introspector] })
  const pair = await registerUser(own)
  t.equal((await introspectWith(own, introspector, pair.access_token)).json().active, true, 'active while fresh (and now cached)')
  clock.advance(15 * 60) // ACCESS_TOKEN_TTL, the default 15 minutes
  t.equal((await introspectWith(own, introspector, pair.access_token)).json().active, true, 'still accepted within CLOCK_TOLERANCE')
  clock.advance(5 + 1) // past CLOCK_TOLERANCE (default 5 s)
  await assertInactive(t, pair.access_token, 'expired', introspector, undefined, own)
  await assertInactive(t, pair.access_token, 'expired, hint access_token', introspector, 'access_token', own)
  t.equal((await introspectWith(own, introspector, pair.refresh_token)).json().active, true, 'the refresh token lives on (30 days)')
})

t.test('a rotated-away refresh token is inactive, within the grace window too', async (t) => {
  const { app: own, clock } = await buildTestApp(t, { clients: [introspector] })
  const pair = await registerUser(own)
  const rotated = await refresh(own, pair.refresh_token)
  t.equal(rotated.statusCode, 200)
  const next = rotated.json()
  await assertInactive(t, pair.refresh_token, 'the old refresh token right after /refresh', introspector, undefined, own)
  await assertInactive(t, pair.refresh_token, 'the old one, hint refresh_token', introspector, 'refresh_token', own)
  t.strictSame((await introspectWith(own, introspector, next.refresh_token)).json(), activeBody(next.refresh_token, 'refresh_token', userClientId), 'the new one is active')

  // Inside REFRESH_REUSE_GRACE (10 s) the old token still refreshes (a retry), yet it is not live.
  clock.advance(5)
  const retry = await refresh(own, pair.refresh_token)
  t.equal(retry.statusCode, 200, 'a retry inside the grace window')
  t.equal(retry.json().refresh_token, next.refresh_token, 'gets the current token back')
  await assertInactive(t, pair.refresh_token, 'the old refresh token after the retry', introspector, undefined, own)
  t.equal((await introspectWith(own, introspector, next.refresh_token)).json().active, true, 'the current one stays active')
  t.equal((await introspectWith(own, introspector, pair.access_token)).json().active, true, 'the session lives: its access token too')

  const third = (await refresh(own, next.refresh_token)).json()
  await assertInactive(t, next.refresh_token, 'the second one, rotated away in its turn', introspector, undefined, own)
  await assertInactive(t, pair.refresh_token, 'two generations back', introspector, undefined, own)
  t.equal((await introspectWith(own, introspector, third.refresh_token)).json().active, true)
})

t.test("a genuine token of another issuer is inactive, even with this service's key and a live session", async (t) => {
  // Another deployment with the same signing key but its own issuer; on PostgreSQL its sessions
  // are even in the same database.
  const { app: other } = await buildTestApp(t, { env: { JWT_PRIVATE_KEY: privateKeyPem, JWT_ISSUER: 'https://other-issuer.example' } })
  const foreign = await registerUser(other)
  t.equal(decodeJwt(foreign.access_token).payload.iss, 'https://other-issuer.example')
  t.not(decodeJwt(foreign.access_token).payload.iss, decodeJwt(user.access_token).payload.iss)
  await assertInactive(t, foreign.access_token, "the other issuer's access token")
  await assertInactive(t, foreign.refresh_token, "the other issuer's refresh token")
  await assertInactive(t, foreign.refresh_token, "the other issuer's refresh token, hint refresh_token", introspector, 'refresh_token')
})

/**
 * Counts the database round trips `target` makes from now on: every connection checkout of its
 * Kysely executor (each query outside a transaction, each transaction), and on PGlite every
 * statement the engine runs. Both forward to the real thing; nothing is answered in their place.
 */
function countDatabaseRoundTrips(t: Test, target: App): { readonly count: number } {
  const counter = { count: 0 }
  const executor = target.db.getExecutor()
  const provideConnection = executor.provideConnection
  executor.provideConnection = function counted(this: typeof executor, consumer) {
    counter.count++
    return provideConnection.call(this, consumer)
  } as typeof provideConnection
  const pglite = target.database.handle.pglite
  const query = pglite?.query
  const exec = pglite?.exec
  if (pglite) {
    pglite.query = function counted(this: typeof pglite, ...args: Parameters<typeof pglite.query>) {
      counter.count++
      return query!.apply(this, args)
    } as typeof pglite.query
    pglite.exec = function counted(this: typeof pglite, ...args: Parameters<typeof pglite.exec>) {
      counter.count++
      return exec!.apply(this, args)
    } as typeof pglite.exec
  }
  t.teardown(() => {
    executor.provideConnection = provideConnection
    if (pglite) {
      pglite.query = query!
      pglite.exec = exec!
    }
  })
  return counter
}

t.test('the hot path: no database round trip once the answer is known', async (t) => {
  const { app: own } = await buildTestApp(t, { clients: [introspector] })
  const pair = await registerUser(own)
  const callerToken = await machineToken(own, introspector)
  // The cache is trusted only while the revocation feed is up (on PostgreSQL it connects after start-up).
  for (const started = performance.now(); !own.sessionLiveness.feedHealthy && performance.now() - started < 10_000;) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(own.sessionLiveness.feedHealthy, 'the revocation feed is up (else every check goes to the database)')
  const expected = activeBody(pair.access_token, 'access_token', userClientId)
  t.strictSame((await introspectWith(own, introspector, pair.access_token)).json(), expected, 'first introspection')

  const counter = countDatabaseRoundTrips(t, own)
  const again = await introspectWith(own, introspector, pair.access_token)
  t.strictSame(again.json(), expected, 'second introspection, by Basic')
  const byBearer = await introspectRaw({ token: pair.access_token }, bearer(callerToken), own)
  t.strictSame(byBearer.json(), expected, 'by Bearer')
  t.equal(counter.count, 0, 'no database round trip for a known live access token')

  // The counter does see the database: a refresh token is checked against its session's current jti.
  t.equal((await introspectWith(own, introspector, pair.refresh_token)).json().active, true)
  t.ok(counter.count > 0, `introspecting a refresh token asks the database (${counter.count} round trips counted)`)

  // A session this instance ended is known dead from memory as well.
  const logout = await own.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  t.equal(logout.statusCode, 204)
  const before = counter.count
  await assertInactive(t, pair.access_token, 'after logout', introspector, undefined, own)
  t.equal(counter.count, before, 'no database round trip for a known dead access token')
})
