// GET /.well-known/jwks.json, GET /health/live and /health/ready, and the OpenAPI document.
import { createPublicKey, verify as verifySignature } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { pgliteDirFor } from '../../src/db/database.js'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { API_PREFIX, buildTestApp, decodeJwt, registerUser } from '../helper.js'
import { copyPgliteTemplate } from '../support/pglite-template.js'

const { app } = await buildTestApp(t)

/** Members of a private JWK (RFC 7518 §6.2.2, §6.3.2, §6.4.1) that must never be published. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

t.test('JWKS: public keys with kid, alg, use and kty, and no private members', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/(jwk-set\+)?json/)
  const jwks = res.json()
  t.same(Object.keys(jwks), ['keys'])
  t.ok(Array.isArray(jwks.keys) && jwks.keys.length >= 1, 'at least the signing key')
  for (const jwk of jwks.keys) {
    t.match(jwk, { kid: String, alg: 'EdDSA', use: 'sig', kty: 'OKP', crv: 'Ed25519', x: /^[A-Za-z0-9_-]{43}$/ })
    for (const member of PRIVATE_MEMBERS) t.notOk(member in jwk, `no "${member}" member`)
    const key = createPublicKey({ key: jwk, format: 'jwk' })
    t.equal(key.type, 'public', 'imports as a public key')
  }
  t.equal(new Set(jwks.keys.map((jwk: { kid: string }) => jwk.kid)).size, jwks.keys.length, 'kids are unique')
  t.notOk(/PRIVATE KEY/.test(res.body))
})

t.test("JWKS: the kid in the tokens' header is published, and its key verifies them", async (t) => {
  const pair = await registerUser(app)
  const { keys } = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  for (const [name, token] of [['access token', pair.access_token], ['refresh token', pair.refresh_token]]) {
    const { header } = decodeJwt(token)
    t.equal(header.alg, 'EdDSA', `${name}: alg`)
    const jwk = keys.find((candidate: { kid: string }) => candidate.kid === header.kid)
    t.ok(jwk, `${name}: kid ${header.kid} is in the JWKS`)
    const [h, p, s] = token.split('.')
    const valid = verifySignature(null, Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'))
    t.ok(valid, `${name}: the published key verifies its signature`)
  }
})

t.test('GET /health/live and /health/ready: 200 with a status', async (t) => {
  for (const url of ['/health/live', '/health/ready']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, url)
    t.same(res.json(), { status: 'ok' }, url)
  }
})

t.test('GET /health/ready is 503 while the database is unreachable; /health/live stays 200', async (t) => {
  // The embedded engine can be closed under a running app, which PostgreSQL cannot be from here.
  const dataDir = mkdtempSync(path.join(tmpdir(), 'auth-test-ready-'))
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    RATE_LIMIT: 'off',
    SESSION_CLEANUP_INTERVAL: '0',
    JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA')
  })
  const pgliteDir = pgliteDirFor(dataDir)
  await copyPgliteTemplate(pgliteDir)
  const embedded = await buildApp(config, { pgliteDir, migrate: true })
  t.teardown(async () => {
    await embedded.close().catch(() => {})
    rmSync(dataDir, { recursive: true, force: true })
  })
  t.equal((await embedded.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'ready while up')

  await embedded.database.handle.pglite!.close()
  const ready = await embedded.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: String })
  t.not(ready.json().status, 'ok')
  t.notOk(/select|pglite|stack/i.test(ready.body), 'no internals in the body')
  const live = await embedded.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200, 'the process itself is still alive')
  t.same(live.json(), { status: 'ok' })
})

t.test('GET /docs/json is an OpenAPI 3 document listing every route of docs/api.md, "Endpoints" and its status codes', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.match(doc.openapi, /^3\.\d+\.\d+$/)
  t.match(doc.info, { title: String, version: String })

  const a = API_PREFIX
  const contract: Array<[string, string, number[]]> = [
    ['post', `${a}/register`, [201, 400, 409]],
    ['post', `${a}/login`, [200, 400, 401, 429]],
    ['post', `${a}/refresh`, [200, 400, 401]],
    ['post', `${a}/logout`, [204, 400, 401, 403]],
    ['post', `${a}/revoke`, [200, 400]],
    ['post', `${a}/password`, [204, 400, 401, 429]],
    ['get', `${a}/me`, [200, 401]],
    ['get', `${a}/sessions`, [200, 401]],
    ['delete', `${a}/sessions/{id}`, [204, 401, 404]],
    ['get', `${a}/verify`, [204, 401]],
    ['get', '/.well-known/jwks.json', [200]],
    ['get', '/health/live', [200]],
    ['get', '/health/ready', [200, 503]]
  ]
  for (const [method, route, codes] of contract) {
    const operation = doc.paths?.[route]?.[method]
    t.ok(operation, `${method.toUpperCase()} ${route} is documented`)
    if (!operation) continue
    const documented = Object.keys(operation.responses ?? {})
    for (const code of codes) t.ok(documented.includes(String(code)), `${method.toUpperCase()} ${route} documents ${code}`)
  }

  const bearerRoutes = contract.filter(([, route]) => /\/(logout|password|me|sessions|verify)/.test(route))
  for (const [method, route] of bearerRoutes) {
    t.same(doc.paths[route][method].security, [{ bearerAuth: [] }], `${method.toUpperCase()} ${route} declares Bearer auth`)
  }
  t.match(doc.components?.securitySchemes?.bearerAuth, { type: 'http', scheme: 'bearer' })
  t.match(doc.paths[`${a}/register`].post.requestBody.content['application/json'].schema, {
    required: ['email', 'password'],
    additionalProperties: false
  })
})
