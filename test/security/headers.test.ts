// Security headers on every response, errors and 404s included (docs/security.md, "Internal
// endpoints and headers"); 404s are not cached and never quote the path.
import type { InjectOptions } from 'fastify'
import t, { type Test } from 'tap'
import { API_PREFIX, bearer, buildTestApp, registerUser } from '../helper.js'

type Headers = Record<string, string | string[] | number | undefined>

function assertSecurityHeaders(t: Test, headers: Headers, what: string, csp: 'api' | 'docs' = 'api') {
  t.equal(headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.equal(headers['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`)
  t.equal(headers['x-frame-options'], 'DENY', `${what}: X-Frame-Options`)
  const policy = String(headers['content-security-policy'] ?? '')
  t.match(policy, /(^|;)\s*frame-ancestors 'none'/, `${what}: CSP frame-ancestors 'none'`)
  if (csp === 'api') t.match(policy, /^default-src 'none'/, `${what}: the API's CSP allows nothing`)
  t.notOk(headers['strict-transport-security'], `${what}: no HSTS (the gateway's)`)
}

const { app } = await buildTestApp(t, { env: { METRICS: 'internal', DOCS: 'public', INTERNAL_PORT: '0' } })
const pair = await registerUser(app)

t.test('every kind of response of the public app carries them', async (t) => {
  const cases: Array<[string, InjectOptions, number]> = [
    ['GET /me', { method: 'GET', url: `${API_PREFIX}/me`, headers: bearer(pair.access_token) }, 200],
    ['GET /verify', { method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(pair.access_token) }, 204],
    ['GET /verify without a token', { method: 'GET', url: `${API_PREFIX}/verify` }, 401],
    ['POST /login, bad body', { method: 'POST', url: `${API_PREFIX}/login`, payload: { email: 'x' } }, 400],
    ['POST /login, text/plain', { method: 'POST', url: `${API_PREFIX}/login`, headers: { 'content-type': 'text/plain' }, payload: 'hi' }, 415],
    ['unknown route', { method: 'GET', url: '/no/such/route' }, 404],
    ['bad URL encoding (router error)', { method: 'GET', url: `${API_PREFIX}/sessions/%zz`, headers: bearer(pair.access_token) }, 400],
    ['GET /health/live', { method: 'GET', url: '/health/live' }, 200],
    ['GET /.well-known/jwks.json', { method: 'GET', url: '/.well-known/jwks.json' }, 200],
    ['HEAD /health/live', { method: 'HEAD', url: '/health/live' }, 200]
  ]
  for (const [what, request, status] of cases) {
    const res = await app.inject(request)
    t.equal(res.statusCode, status, `${what}: ${status}`)
    assertSecurityHeaders(t, res.headers, what)
  }
})

t.test('a 404 is not cached and does not quote the path, where a token may be', async (t) => {
  const token = pair.access_token
  for (const url of [`/${token}`, `${API_PREFIX}/verify/${token}`, `${API_PREFIX}/${token}?x=1`]) {
    for (const method of ['GET', 'POST', 'DELETE'] as const) {
      const res = await app.inject({ method, url })
      t.equal(res.statusCode, 404)
      t.equal(res.headers['cache-control'], 'no-store', `${method} 404: Cache-Control: no-store`)
      t.same(res.json(), { statusCode: 404, error: 'Not Found', message: 'Route not found' }, `${method} 404: a fixed body`)
      t.notOk(res.body.includes(token.slice(0, 20)), 'no token in the body')
    }
  }
})

t.test('the docs: a CSP the Swagger UI works under, still never framed', async (t) => {
  for (const url of ['/docs', '/docs/json', '/docs/static/swagger-ui-bundle.js']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, `${url}: 200`)
    assertSecurityHeaders(t, res.headers, url, 'docs')
    t.match(res.headers['content-security-policy'], /script-src 'self'(;|$)/, `${url}: scripts from the service only, none inline`)
  }
})

t.test('the internal listener carries them too', async (t) => {
  const metrics = await app.internal!.inject({ method: 'GET', url: '/metrics' })
  t.equal(metrics.statusCode, 200)
  assertSecurityHeaders(t, metrics.headers, 'internal /metrics')
  const missing = await app.internal!.inject({ method: 'GET', url: '/nothing' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.headers['cache-control'], 'no-store')
  assertSecurityHeaders(t, missing.headers, 'internal 404')
})
