// POST /api/v1/auth/token, the client credentials grant (RFC 6749 §4.4): client_secret_basic and
// client_secret_post, RFC 9068 machine tokens, and every error exactly as RFC 6749 §5.2 has it.
// Failed client authentications are audited and rate limited per IP; successes never are.
import { createPublicKey, randomUUID, verify as verifySignature } from 'node:crypto'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { API_PREFIX, basicAuth, buildTestApp, decodeJwt, form, testClient, type TestClient } from '../helper.js'

const ACCESS_TOKEN_TTL = 600
const admin = testClient('introspect sessions:admin')
const introspector = testClient('introspect')
const { app } = await buildTestApp(t, { clients: [admin, introspector], env: { ACCESS_TOKEN_TTL: '10m' } })
const url = `${API_PREFIX}/token`
const GRANT = { grant_type: 'client_credentials' }

/** POST /token with this form body and these headers. */
function token(fields: Record<string, string>, headers: Record<string, string> = {}, on: App = app, remoteAddress?: string) {
  const body = form(fields)
  return on.inject({ method: 'POST', url, payload: body.payload, headers: { ...body.headers, ...headers }, ...(remoteAddress ? { remoteAddress } : {}) })
}

/** POST /token with a raw form body (a parameter twice, hand-encoded values). */
function tokenRaw(payload: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } })
}

const postCredentials = (client: TestClient) => ({ client_id: client.clientId, client_secret: client.secret })
const basicOf = (value: string) => ({ authorization: `Basic ${Buffer.from(value).toString('base64')}` })

/** RFC 6749 §5.2: `{ error, error_description? }` and nothing else, never cached. */
function oauthError(t: Test, res: Awaited<ReturnType<typeof token>>, status: number, error: string, name = error) {
  t.equal(res.statusCode, status, `${name}: ${status}`)
  t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
  t.equal(res.headers['cache-control'], 'no-store', `${name}: no-store`)
  const body = res.json()
  t.equal(body.error, error, `${name}: error ${error}`)
  t.ok(Object.keys(body).every((key) => key === 'error' || key === 'error_description'), `${name}: only error and error_description (${res.body})`)
  if ('error_description' in body) t.type(body.error_description, 'string', `${name}: error_description is a string`)
  return body
}

function invalidClient(t: Test, res: Awaited<ReturnType<typeof token>>, name: string) {
  oauthError(t, res, 401, 'invalid_client', name)
  t.match(res.headers['www-authenticate'], /^Basic realm="[^"]+"/, `${name}: WWW-Authenticate Basic realm`)
}

const metadata = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json()
const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()

t.test('client_secret_basic: 200, Bearer, expires_in, scope, no-store and Pragma no-cache', async (t) => {
  const res = await token(GRANT, basicAuth(admin))
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers.pragma, 'no-cache')
  t.match(res.headers['content-type'], /^application\/json/)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'scope', 'token_type'])
  t.equal(body.token_type, 'Bearer')
  t.equal(body.expires_in, ACCESS_TOKEN_TTL)
  t.equal(body.scope, 'introspect sessions:admin', 'no scope asked for: all of the client’s')
})

t.test('client_secret_post: the same', async (t) => {
  const res = await token({ ...GRANT, ...postCredentials(introspector) })
  t.equal(res.statusCode, 200)
  t.equal(res.headers.pragma, 'no-cache')
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.json(), { token_type: 'Bearer', expires_in: ACCESS_TOKEN_TTL, scope: 'introspect', access_token: String })
  t.equal(decodeJwt(res.json().access_token).payload.client_id, introspector.clientId)
})

t.test('the token is an RFC 9068 JWT of the client, signed by a key in the JWKS', async (t) => {
  for (const [name, res] of [['basic', await token(GRANT, basicAuth(admin))], ['post', await token({ ...GRANT, ...postCredentials(admin) })]] as const) {
    const { access_token: accessToken } = res.json()
    const { header, payload } = decodeJwt(accessToken)
    t.equal(header.typ, 'at+jwt', `${name}: typ at+jwt`)
    t.equal(header.alg, 'EdDSA', `${name}: alg`)
    const jwk = jwks.keys.find((key: { kid: string }) => key.kid === header.kid)
    t.ok(jwk, `${name}: its kid is in /.well-known/jwks.json`)
    const [h, p, s] = accessToken.split('.')
    t.ok(verifySignature(null, Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url')), `${name}: that key verifies it`)
    t.equal(payload.sub, admin.clientId, `${name}: sub is the client`)
    t.equal(payload.client_id, admin.clientId, `${name}: client_id is the client`)
    t.equal(payload.scope, 'introspect sessions:admin', `${name}: scope`)
    t.equal(payload.iss, metadata.issuer, `${name}: iss is the issuer`)
    t.equal(payload.aud, metadata.issuer, `${name}: aud is the issuer (this service alone)`)
    t.notOk('sid' in payload, `${name}: no sid`)
    t.type(payload.jti, 'string', `${name}: jti`)
    t.equal(payload.exp - payload.iat, ACCESS_TOKEN_TTL, `${name}: exp - iat = ACCESS_TOKEN_TTL`)
    t.ok(Math.abs(payload.iat - Date.now() / 1000) < 60, `${name}: iat is now`)
  }
  const [a, b] = await Promise.all([token(GRANT, basicAuth(admin)), token(GRANT, basicAuth(admin))])
  t.not(decodeJwt(a.json().access_token).payload.jti, decodeJwt(b.json().access_token).payload.jti, 'every token has its own jti')
})

t.test('scope: a subset asked for gives only that; none gives all', async (t) => {
  const cases: Array<[string, string | undefined, string[]]> = [
    ['introspect alone', 'introspect', ['introspect']],
    ['sessions:admin alone', 'sessions:admin', ['sessions:admin']],
    ['both, in the other order', 'sessions:admin introspect', ['introspect', 'sessions:admin']],
    ['none', undefined, ['introspect', 'sessions:admin']]
  ]
  for (const [name, scope, granted] of cases) {
    const res = await token({ ...GRANT, ...(scope === undefined ? {} : { scope }) }, basicAuth(admin))
    t.equal(res.statusCode, 200, name)
    t.same(res.json().scope.split(' ').sort(), granted, `${name}: the response's scope`)
    t.same(decodeJwt(res.json().access_token).payload.scope.split(' ').sort(), granted, `${name}: the token's scope`)
  }
})

t.test('scope: one the client lacks or an unknown one is 400 invalid_scope', async (t) => {
  const cases: Array<[string, TestClient, string]> = [
    ['a scope the client lacks', introspector, 'sessions:admin'],
    ['one of two the client lacks', introspector, 'introspect sessions:admin'],
    ['a known scope no one here has', admin, 'ssf.manage'],
    ['an unknown scope', admin, 'admin'],
    ['an unknown scope beside a good one', admin, 'introspect everything']
  ]
  for (const [name, client, scope] of cases) {
    oauthError(t, await token({ ...GRANT, scope }, basicAuth(client)), 400, 'invalid_scope', name)
    oauthError(t, await token({ ...GRANT, scope, ...postCredentials(client) }), 400, 'invalid_scope', `${name} (post)`)
  }
})

t.test('bad client credentials: 401 invalid_client with a Basic challenge', async (t) => {
  const unknown = testClient('introspect')
  const cases: Record<string, Record<string, string>> = {
    'a wrong secret': basicAuth({ ...admin, secret: introspector.secret }),
    'an empty secret': basicOf(`${admin.clientId}:`),
    'an unknown client': basicAuth(unknown),
    'a known client with the wrong case': basicAuth({ ...admin, clientId: admin.clientId.toUpperCase() }),
    'not base64': { authorization: 'Basic !!!not-base64!!!' },
    'base64 without a colon': basicOf(`${admin.clientId}${admin.secret}`),
    'an empty client id': basicOf(`:${admin.secret}`),
    'Basic with nothing': { authorization: 'Basic' },
    'Basic with a space only': { authorization: 'Basic ' },
    'a bad percent-encoding': basicOf(`${admin.clientId}:%zz${admin.secret}`)
  }
  for (const [name, headers] of Object.entries(cases)) invalidClient(t, await token(GRANT, headers), name)
  invalidClient(t, await token(GRANT), 'no credentials at all')
  invalidClient(t, await token(GRANT, { authorization: 'Bearer abc' }), 'a Bearer token instead')
  invalidClient(t, await token({ ...GRANT, client_id: admin.clientId, client_secret: introspector.secret }), 'a wrong secret (post)')
  invalidClient(t, await token({ ...GRANT, ...postCredentials(unknown) }), 'an unknown client (post)')
  invalidClient(t, await token({ ...GRANT, client_secret: admin.secret }), 'a secret without client_id (post)')
  invalidClient(t, await token({ ...GRANT, client_id: admin.clientId }), 'client_id without a secret (post)')
})

t.test('Basic id and secret form-urlencoded before base64 (RFC 6749 §2.3.1)', async (t) => {
  const encodeAll = (value: string) => [...Buffer.from(value)].map((byte) => `%${byte.toString(16).padStart(2, '0').toUpperCase()}`).join('')
  const res = await token(GRANT, basicOf(`${encodeAll(admin.clientId)}:${encodeAll(admin.secret)}`))
  t.equal(res.statusCode, 200, 'every character percent-encoded')
  t.equal(decodeJwt(res.json().access_token).payload.client_id, admin.clientId)
  t.equal((await token(GRANT, basicOf(`${admin.clientId}:${admin.secret}`))).statusCode, 200, 'and as is')
  t.equal((await token(GRANT, { authorization: `basic ${Buffer.from(`${admin.clientId}:${admin.secret}`).toString('base64')}` })).statusCode, 200, 'the scheme is case-insensitive')
})

t.test('two authentication methods at once: 400 invalid_request', async (t) => {
  oauthError(t, await token({ ...GRANT, ...postCredentials(admin) }, basicAuth(admin)), 400, 'invalid_request', 'Basic and client_id/client_secret')
  oauthError(t, await token({ ...GRANT, client_secret: admin.secret }, basicAuth(admin)), 400, 'invalid_request', 'Basic and client_secret')
  oauthError(t, await token({ ...GRANT, client_id: admin.clientId }, basicAuth(admin)), 400, 'invalid_request', 'Basic and client_id')
})

t.test('grant_type: missing is invalid_request, anything but client_credentials unsupported_grant_type', async (t) => {
  oauthError(t, await token({}, basicAuth(admin)), 400, 'invalid_request', 'grant_type missing')
  oauthError(t, await token({ scope: 'introspect', ...postCredentials(admin) }), 400, 'invalid_request', 'grant_type missing (post)')
  // RFC 6749 §3.2: a parameter without a value counts as omitted.
  oauthError(t, await token({ grant_type: '' }, basicAuth(admin)), 400, 'invalid_request', 'grant_type empty')
  const allScopes = await token({ ...GRANT, scope: '' }, basicAuth(admin))
  t.equal(allScopes.statusCode, 200, 'an empty scope is no scope: all of the client\'s')
  t.equal(allScopes.json().scope, admin.scope, 'every scope of the client granted')
  for (const grantType of ['password', 'authorization_code', 'refresh_token', 'CLIENT_CREDENTIALS']) {
    oauthError(t, await token({ grant_type: grantType }, basicAuth(admin)), 400, 'unsupported_grant_type', `grant_type=${grantType}`)
  }
  oauthError(t, await token({ grant_type: 'password', username: 'a@example.com', password: 'x' }, basicAuth(admin)), 400, 'unsupported_grant_type', 'a password grant with its fields')
})

t.test('a parameter sent twice: 400 invalid_request', async (t) => {
  const basic = basicAuth(admin)
  oauthError(t, await tokenRaw('grant_type=client_credentials&grant_type=client_credentials', basic), 400, 'invalid_request', 'grant_type twice')
  oauthError(t, await tokenRaw('grant_type=client_credentials&scope=introspect&scope=introspect', basic), 400, 'invalid_request', 'scope twice')
  const post = `client_id=${admin.clientId}&client_secret=${admin.secret}`
  oauthError(t, await tokenRaw(`grant_type=client_credentials&${post}&client_secret=${admin.secret}`), 400, 'invalid_request', 'client_secret twice')
  oauthError(t, await tokenRaw(`grant_type=client_credentials&${post}&client_id=${admin.clientId}`), 400, 'invalid_request', 'client_id twice')
})

t.test('a body that is not a form: 415', async (t) => {
  const json = await app.inject({ method: 'POST', url, headers: basicAuth(admin), payload: { grant_type: 'client_credentials' } })
  oauthError(t, json, 415, json.json().error, 'a JSON body')
  const text = await app.inject({ method: 'POST', url, headers: { ...basicAuth(admin), 'content-type': 'text/plain' }, payload: 'grant_type=client_credentials' })
  oauthError(t, text, 415, text.json().error, 'a text body')
  t.equal(json.json().error, 'invalid_request')
  oauthError(t, await app.inject({ method: 'POST', url, headers: basicAuth(admin) }), 400, 'invalid_request', 'no body at all')
})

t.test('unknown form parameters are ignored (RFC 6749 §3.2)', async (t) => {
  const res = await token({ ...GRANT, resource: 'https://api.example.com', audience: 'x', foo: 'bar', client_assertion_type: 'nothing' }, basicAuth(admin))
  t.equal(res.statusCode, 200)
  t.equal(res.json().scope, 'introspect sessions:admin')
  const { payload } = decodeJwt(res.json().access_token)
  t.equal(payload.aud, metadata.issuer, 'the token is the same as ever')
  t.notOk('resource' in payload || 'foo' in payload, 'nothing of them in the token')
})

/** The auth_events rows of `kind` whose detail names `clientId`. */
function eventsNaming(kind: string, clientId: string) {
  return app.db.selectFrom('auth_events').selectAll().where('kind', '=', kind as 'client_auth_failed').where(sql<string>`detail->>'client_id'`, '=', clientId).orderBy('id').execute()
}

t.test('a failed client authentication is audited with the client id, never the secret', async (t) => {
  const victim = testClient('introspect', `victim-${randomUUID().slice(0, 8)}`)
  const wrongSecret = `${admin.secret.slice(0, 20)}-guess-${randomUUID()}`
  const { app: own } = await buildTestApp(t, { clients: [victim] })
  const failedOn = (target: App) => target.db
    .selectFrom('auth_events')
    .selectAll()
    .where('kind', '=', 'client_auth_failed')
    .where(sql<string>`detail->>'client_id'`, '=', victim.clientId)
    .orderBy('id')
    .execute()
  t.equal((await token(GRANT, basicAuth({ ...victim, secret: wrongSecret }), own, '198.51.100.20')).statusCode, 401)
  t.equal((await token({ ...GRANT, client_id: victim.clientId, client_secret: wrongSecret }, {}, own)).statusCode, 401)
  const events = await failedOn(own)
  t.equal(events.length, 2, 'both failures are recorded')
  t.match(events[0], { kind: 'client_auth_failed', user_id: null, session_id: null, ip: '198.51.100.20', detail: { method: 'client_secret_basic', client_id: victim.clientId } })
  t.match(events[1], { detail: { method: 'client_secret_post', client_id: victim.clientId } })
  const everything = JSON.stringify(await own.db.selectFrom('auth_events').selectAll().execute())
  t.notOk(everything.includes(wrongSecret), 'the wrong secret is nowhere in the audit trail')
  t.notOk(everything.includes(victim.secret), 'nor the real one')

  t.equal((await token(GRANT, { authorization: 'Basic !!!' }, own)).statusCode, 401)
  const malformed = await own.db.selectFrom('auth_events').selectAll().where('kind', '=', 'client_auth_failed').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow()
  t.same(malformed.detail, { method: 'client_secret_basic' }, 'a malformed Basic header is recorded too, without a client id')
  t.ok((await eventsNaming('client_auth_failed', admin.clientId)).length >= 2, 'the failures of the shared app are there as well (wrong secrets for a known client)')
})

t.test('a successful token is audited as client_token_issued with the client as the actor', async (t) => {
  const issuer = testClient('sessions:admin')
  const { app: own } = await buildTestApp(t, { clients: [issuer] })
  t.equal((await token(GRANT, basicAuth(issuer), own, '203.0.113.5')).statusCode, 200)
  const events = await own.db.selectFrom('auth_events').selectAll().where('actor_client_id', '=', issuer.clientId).execute()
  t.equal(events.length, 1)
  t.match(events[0], { kind: 'client_token_issued', actor_client_id: issuer.clientId, user_id: null, session_id: null, ip: '203.0.113.5', detail: { scope: 'sessions:admin' } })
  t.notOk(JSON.stringify(events).includes(issuer.secret), 'never the secret')
})

t.test('failed client authentications are rate limited per IP; successes never are', async (t) => {
  const limited = testClient('introspect')
  const { app: own } = await buildTestApp(t, {
    clients: [limited],
    env: { RATE_LIMIT: 'on', RATE_LIMIT_ACCOUNT_MAX: '3', RATE_LIMIT_IP_MAX: '5', RATE_LIMIT_WINDOW: '1m' }
  })
  const wrong = basicAuth({ ...limited, secret: admin.secret })
  const attacker = '192.0.2.66'
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await token(GRANT, wrong, own, attacker)).statusCode)
  t.same(statuses, [401, 401, 401], 'the first RATE_LIMIT_ACCOUNT_MAX failures are answered')
  const refused = await token(GRANT, wrong, own, attacker)
  oauthError(t, refused, 429, refused.json().error, 'the next failure')
  t.match(refused.headers['retry-after'], /^[1-9]\d*$/, 'with Retry-After')
  t.ok(Number(refused.headers['retry-after']) <= 60, 'no longer than the window')
  t.equal((await token(GRANT, basicAuth(limited), own, attacker)).statusCode, 429, 'from that address even good credentials wait')
  t.equal((await token({ ...GRANT, ...postCredentials(limited) }, {}, own, attacker)).statusCode, 429, 'by either method')
  t.equal((await token(GRANT, basicAuth(limited), own, '192.0.2.67')).statusCode, 200, 'another address is not limited')

  const busy = '192.0.2.80'
  const successes = []
  for (let i = 0; i < 25; i++) successes.push((await token(GRANT, basicAuth(limited), own, busy)).statusCode)
  t.same(successes, Array(25).fill(200), 'many successes in a row, beyond RATE_LIMIT_IP_MAX and RATE_LIMIT_ACCOUNT_MAX, all pass')
  t.equal((await token(GRANT, wrong, own, busy)).statusCode, 401, 'and they did not count as failures')
})
