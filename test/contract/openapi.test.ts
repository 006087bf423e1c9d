// GET /docs/json: the OpenAPI document built from the route schemas must be a valid OpenAPI 3
// document (clients are generated from it), and must say what the routes really do.
import { Validator } from '@seriousme/openapi-schema-validator'
import t from 'tap'
import { buildTestApp } from '../helper.js'

const { app } = await buildTestApp(t)
const res = await app.inject({ method: 'GET', url: '/docs/json' })
t.equal(res.statusCode, 200, 'GET /docs/json answers 200')
const doc = res.json()

interface Response {
  description?: string
  content?: Record<string, unknown>
  headers?: Record<string, { schema?: Record<string, unknown>, description?: string }>
}
type Operation = { responses: Record<string, Response> }

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])
function* operations(): Generator<[string, string, Operation]> {
  for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths ?? {})) {
    for (const [method, operation] of Object.entries(item)) {
      if (HTTP_METHODS.has(method)) yield [path, method, operation as Operation]
    }
  }
}

t.test('the document is valid OpenAPI', async (t) => {
  const validator = new Validator()
  // The validator keeps what it is given: a copy, so the checks below read the served document.
  const result = await validator.validate(structuredClone(doc))
  t.equal(result.valid, true, `OpenAPI ${doc.openapi} validation errors:\n${JSON.stringify(result.errors, null, 2)}`)
  t.match(validator.version, /^3\./, 'an OpenAPI 3 document')
})

t.test('every 204 response declares no body', async (t) => {
  let seen = 0
  for (const [path, method, operation] of operations()) {
    const noContent = operation.responses['204']
    if (!noContent) continue
    seen++
    t.equal(noContent.content, undefined, `${method.toUpperCase()} ${path}: a 204 has no content`)
    t.type(noContent.description, 'string', `${method.toUpperCase()} ${path}: the 204 is described`)
  }
  t.ok(seen >= 4, `the 204s of /password, /logout, DELETE /sessions/{id} and /verify (saw ${seen})`)
})

t.test("RFC 7009 revocation's 200 declares no body either", async (t) => {
  const ok = doc.paths['/api/v1/auth/revoke']?.post?.responses?.['200'] as Response | undefined
  t.ok(ok, 'POST /revoke has a 200')
  t.equal(ok?.content, undefined)
})

t.test('GET /verify 204 declares x-user-id and x-session-id', async (t) => {
  const noContent = doc.paths['/api/v1/auth/verify']?.get?.responses?.['204'] as Response | undefined
  t.ok(noContent, 'GET /api/v1/auth/verify has a 204')
  t.same(Object.keys(noContent?.headers ?? {}).sort(), ['x-session-id', 'x-user-id'])
  for (const name of ['x-user-id', 'x-session-id']) {
    const header = noContent?.headers?.[name]
    t.same(header?.schema, { type: 'string', format: 'uuid' }, `${name} is a UUID`)
    t.type(header?.description, 'string', `${name} is described`)
  }
})

t.test('every path is under /api/v1/auth, /.well-known or /health', async (t) => {
  const paths = Object.keys(doc.paths ?? {})
  t.ok(paths.length > 0, 'the document has paths')
  for (const path of paths) {
    t.match(path, /^\/(api\/v1\/auth|\.well-known|health)\//, path)
  }
  for (const expected of ['/api/v1/auth/login', '/api/v1/auth/verify', '/.well-known/jwks.json', '/health/ready']) {
    t.ok(paths.includes(expected), `${expected} is documented`)
  }
})

t.test('every operation answers something, and every $ref resolves', async (t) => {
  for (const [path, method, operation] of operations()) {
    t.ok(Object.keys(operation.responses ?? {}).length > 0, `${method.toUpperCase()} ${path} has responses`)
  }
  const refs = new Set<string>()
  JSON.stringify(doc, (key, value) => {
    if (key === '$ref' && typeof value === 'string') refs.add(value)
    return value
  })
  for (const ref of refs) {
    t.match(ref, /^#\/components\/schemas\//, `${ref} is local`)
    t.ok(doc.components?.schemas?.[ref.slice('#/components/schemas/'.length)], `${ref} resolves`)
  }
})

t.test('the recovery endpoints are documented with their status codes (docs/api.md, "Endpoints")', async (t) => {
  const expected: Record<string, string[]> = {
    '/api/v1/auth/password/forgot': ['202', '400', '415', '429', '503'],
    '/api/v1/auth/password/reset': ['204', '400', '415', '429', '503'],
    '/api/v1/auth/email/verification': ['202', '401', '409', '429', '503'],
    '/api/v1/auth/email/verify': ['204', '400', '415', '429', '503']
  }
  for (const [path, statuses] of Object.entries(expected)) {
    const operation = doc.paths[path]?.post as Operation | undefined
    t.ok(operation, `POST ${path} is documented`)
    t.same(Object.keys(operation?.responses ?? {}).sort(), statuses, `POST ${path} answers ${statuses.join(', ')}`)
    for (const status of ['202', '204']) {
      if (operation?.responses[status]) t.equal(operation.responses[status].content, undefined, `POST ${path}: ${status} has no body`)
    }
  }
  t.same(doc.paths['/api/v1/auth/email/verification'].post.security, [{ bearerAuth: [] }], 'POST /email/verification takes a Bearer token')
  const user = doc.components.schemas.User
  t.same(user.properties.email_verified, { type: 'boolean', description: user.properties.email_verified.description }, 'the user object has email_verified')
})
