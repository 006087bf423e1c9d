// PUBLIC_URL, the issuer and GET /.well-known/oauth-authorization-server (RFC 8414): one issuer
// for every token and document, byte for byte; absolute URLs built from PUBLIC_URL; JWT_ISSUER
// changes the issuer alone; a PUBLIC_URL that cannot be a base URL is refused at start-up.
import t, { type Test } from 'tap'
import { SCOPES } from '../../src/auth/service-clients.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { API_PREFIX, buildTestApp, decodeJwt, machineToken, registerUser, testClient, type TestContext } from '../helper.js'

const METADATA = '/.well-known/oauth-authorization-server'
/** The members the contract lists ("Issuer and discovery"). */
const CONTRACT_MEMBERS = [
  'issuer',
  'jwks_uri',
  'token_endpoint',
  'introspection_endpoint',
  'revocation_endpoint',
  'grant_types_supported',
  'token_endpoint_auth_methods_supported',
  'introspection_endpoint_auth_methods_supported',
  'scopes_supported'
]

async function metadataOf(t: Test, app: TestContext['app']) {
  const res = await app.inject({ method: 'GET', url: METADATA })
  t.equal(res.statusCode, 200, 'metadata: 200')
  t.match(res.headers['content-type'], /^application\/json/, 'metadata: JSON (RFC 8414 §3.2)')
  return res.json()
}

/** buildTestApp with one machine client and this environment. */
async function appWith(t: Test, env: Record<string, string>) {
  const client = testClient('introspect sessions:admin')
  const context = await buildTestApp(t, { clients: [client], env })
  return { ...context, client }
}

/** The user's access and refresh tokens and a machine token of `app`, decoded. */
async function tokensOf(app: TestContext['app'], client: ReturnType<typeof testClient>) {
  const user = await registerUser(app)
  return {
    access: decodeJwt(user.access_token).payload,
    refresh: decodeJwt(user.refresh_token).payload,
    machine: decodeJwt(await machineToken(app, client)).payload
  }
}

// Built once: the JWT_ISSUER test below runs a second service on its key and client.
const first = await appWith(t, { PUBLIC_URL: 'https://auth.example.com' })

t.test('PUBLIC_URL=https://auth.example.com: every member of the contract, absolute URLs from it', async (t) => {
  const { app, client } = first
  const metadata = await metadataOf(t, app)
  for (const member of CONTRACT_MEMBERS) t.ok(member in metadata, `has ${member}`)
  t.equal(metadata.issuer, 'https://auth.example.com')
  t.equal(metadata.jwks_uri, 'https://auth.example.com/.well-known/jwks.json')
  t.equal(metadata.token_endpoint, 'https://auth.example.com/api/v1/auth/token')
  t.equal(metadata.introspection_endpoint, 'https://auth.example.com/api/v1/auth/introspect')
  t.equal(metadata.revocation_endpoint, 'https://auth.example.com/api/v1/auth/revoke')
  t.same(metadata.grant_types_supported, ['client_credentials'])
  t.same([...metadata.token_endpoint_auth_methods_supported].sort(), ['client_secret_basic', 'client_secret_post'])
  t.ok(metadata.introspection_endpoint_auth_methods_supported.includes('client_secret_basic'), 'introspection takes client_secret_basic')
  t.same([...metadata.scopes_supported].sort(), [...SCOPES].sort())
  t.same([...metadata.scopes_supported].sort(), ['introspect', 'sessions:admin', 'ssf.manage', 'ssf.read'], 'the contract’s scopes')
  t.same(metadata.response_types_supported, [], 'RFC 8414 requires it; there is no authorization endpoint')
  for (const member of ['jwks_uri', 'token_endpoint', 'introspection_endpoint', 'revocation_endpoint']) {
    const url = new URL(metadata[member])
    t.equal(url.origin, 'https://auth.example.com', `${member} is absolute, on PUBLIC_URL`)
    t.equal(url.search + url.hash, '', `${member}: no query or fragment`)
  }

  // Every URL names a route that answers here (the path after PUBLIC_URL is the service's own).
  const path = (member: string) => new URL(metadata[member]).pathname
  t.equal((await app.inject({ method: 'GET', url: path('jwks_uri') })).statusCode, 200, 'jwks_uri is served')
  for (const member of ['token_endpoint', 'introspection_endpoint']) {
    const res = await app.inject({ method: 'POST', url: path(member), headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'x=1' })
    t.not(res.statusCode, 404, `${member} is served`)
  }
  t.equal((await app.inject({ method: 'POST', url: path('revocation_endpoint'), payload: { token: 'x' } })).statusCode, 200, 'revocation_endpoint is served')

  const tokens = await tokensOf(app, client)
  t.equal(tokens.access.iss, metadata.issuer, "a user's access token: iss is the issuer, byte for byte")
  t.equal(tokens.refresh.iss, metadata.issuer, "a user's refresh token: the same")
  t.equal(tokens.machine.iss, metadata.issuer, 'a machine token: the same')
  t.equal(tokens.machine.aud, metadata.issuer, "a machine token's audience is the issuer")
})

t.test('PUBLIC_URL with a path prefix (and a trailing slash, dropped): https://example.com/auth/', async (t) => {
  for (const [value, expected] of [['https://auth.example.com/', 'https://auth.example.com'], ['https://example.com/auth/', 'https://example.com/auth']]) {
    t.equal(loadConfig({ PUBLIC_URL: value }).publicUrl, expected, `${value}: the slash is dropped`)
    t.equal(loadConfig({ PUBLIC_URL: value }).tokens.issuer, expected, `${value}: the issuer`)
  }
  const { app, client } = await appWith(t, { PUBLIC_URL: 'https://example.com/auth/' })
  const metadata = await metadataOf(t, app)
  t.equal(metadata.issuer, 'https://example.com/auth')
  t.equal(metadata.jwks_uri, 'https://example.com/auth/.well-known/jwks.json')
  t.equal(metadata.token_endpoint, `https://example.com/auth${API_PREFIX}/token`, 'no double slash')
  t.equal(metadata.introspection_endpoint, `https://example.com/auth${API_PREFIX}/introspect`)
  t.equal(metadata.revocation_endpoint, `https://example.com/auth${API_PREFIX}/revoke`)
  const tokens = await tokensOf(app, client)
  for (const kind of ['access', 'refresh', 'machine'] as const) t.equal(tokens[kind].iss, 'https://example.com/auth', `${kind}: iss`)
})

t.test('JWT_ISSUER overrides the issuer only: the URLs still come from PUBLIC_URL', async (t) => {
  const { client } = first
  const { app } = await buildTestApp(t, {
    clients: [client],
    env: { PUBLIC_URL: 'https://auth.example.com', JWT_ISSUER: 'https://issuer.example.org', JWT_PRIVATE_KEY: first.privateKeyPem }
  })
  const metadata = await metadataOf(t, app)
  t.equal(metadata.issuer, 'https://issuer.example.org')
  t.equal(metadata.jwks_uri, 'https://auth.example.com/.well-known/jwks.json')
  t.equal(metadata.token_endpoint, 'https://auth.example.com/api/v1/auth/token')
  t.equal(metadata.introspection_endpoint, 'https://auth.example.com/api/v1/auth/introspect')
  t.equal(metadata.revocation_endpoint, 'https://auth.example.com/api/v1/auth/revoke')
  const tokens = await tokensOf(app, client)
  for (const kind of ['access', 'refresh', 'machine'] as const) t.equal(tokens[kind].iss, 'https://issuer.example.org', `${kind}: iss is JWT_ISSUER`)
  t.equal(tokens.machine.aud, 'https://issuer.example.org', "a machine token's audience follows the issuer")
  const config = loadConfig({ PUBLIC_URL: 'https://auth.example.com', JWT_ISSUER: 'https://issuer.example.org' })
  t.equal(config.publicUrl, 'https://auth.example.com', 'PUBLIC_URL is unchanged')
  t.equal(config.tokens.issuer, 'https://issuer.example.org')

  // Same key, same client, same PUBLIC_URL, another issuer: the first service's tokens are not this one's.
  const foreign = await machineToken(first.app, client)
  const res = await app.inject({ method: 'GET', url: `${API_PREFIX}/admin/users?email=a@example.com`, headers: { authorization: `Bearer ${foreign}` } })
  t.equal(res.statusCode, 401, "a machine token of the other issuer: 401")
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  const own = await machineToken(app, client)
  t.equal((await app.inject({ method: 'GET', url: `${API_PREFIX}/admin/users?email=a@example.com`, headers: { authorization: `Bearer ${own}` } })).statusCode, 404, 'its own token gets in (and finds no such user)')
})

t.test('default PUBLIC_URL: http://HOST:PORT, and it is the issuer', async (t) => {
  t.equal(loadConfig({}).publicUrl, 'http://127.0.0.1:3000', 'HOST and PORT defaults')
  t.equal(loadConfig({}).tokens.issuer, 'http://127.0.0.1:3000')
  t.equal(loadConfig({ HOST: 'auth.internal', PORT: '8080' }).publicUrl, 'http://auth.internal:8080')
  t.equal(loadConfig({ HOST: '::1', PORT: '8443' }).publicUrl, 'http://[::1]:8443', 'an IPv6 host in brackets')
  t.equal(loadConfig({ HOST: 'auth.internal', PORT: '8080', JWT_ISSUER: 'urn:example:auth' }).tokens.issuer, 'urn:example:auth', 'JWT_ISSUER still wins')
  const { app, client } = await appWith(t, {})
  const metadata = await metadataOf(t, app)
  t.equal(metadata.issuer, 'http://127.0.0.1:3000')
  t.equal(metadata.token_endpoint, 'http://127.0.0.1:3000/api/v1/auth/token')
  const tokens = await tokensOf(app, client)
  for (const kind of ['access', 'refresh', 'machine'] as const) t.equal(tokens[kind].iss, 'http://127.0.0.1:3000', `${kind}: iss`)
})

t.test('a PUBLIC_URL that cannot be a base URL is refused, naming PUBLIC_URL', async (t) => {
  const bad: Record<string, string> = {
    'relative (no scheme)': 'auth.example.com',
    'a path only': '/auth',
    'ftp:': 'ftp://auth.example.com',
    'javascript:': 'javascript:alert(1)',
    'with a query': 'https://auth.example.com/?tenant=1',
    'with an empty query': 'https://auth.example.com/?',
    'with a query after a path': 'https://example.com/auth?x',
    'with a fragment': 'https://auth.example.com/#top',
    'with an empty fragment': 'https://auth.example.com#',
    'with credentials': 'https://user:secret@auth.example.com',
    empty: ''
  }
  for (const [name, value] of Object.entries(bad)) {
    t.throws(() => loadConfig({ PUBLIC_URL: value }), ConfigError, `${name}: a ConfigError`)
    t.throws(() => loadConfig({ PUBLIC_URL: value }), { message: /PUBLIC_URL/ }, `${name}: names PUBLIC_URL`)
  }
  for (const good of ['http://localhost:3000', 'https://auth.example.com', 'https://example.com/auth', 'https://auth.example.com:8443/x/y']) {
    t.doesNotThrow(() => loadConfig({ PUBLIC_URL: good }), good)
  }
})
