// Property-based fuzzing of what surrounds the body: its media type (not JSON: 415), its syntax
// (malformed JSON: 400), its size (over 1 MiB: 413), bodies and query strings on the GET routes,
// and random extra headers on every route. Properties as in bodies.test.ts: never a 5xx, the
// error shape of docs/api.md, "Conventions" with nothing leaked, and a 4xx changes nothing in the database
// (auth_events, the audit trail, excepted: see support.ts, dbState).
import assert from 'node:assert/strict'
import fc from 'fast-check'
import t from 'tap'
import { PASSWORD, bearer, type TokenPairBody } from '../helper.js'
import {
  anyString,
  fuzzFixture,
  headerValue,
  jsonValue,
  markedSecret,
  objectText,
  params,
  percentEncode,
  probe,
  statusTally,
  url,
  type Expectation,
  type FuzzFixture
} from './support.js'

const f: FuzzFixture = await fuzzFixture(t)
const { app } = f
const caller = () => bearer(f.victim.second.access_token)

/** The POST routes, each with a valid-looking body (carrying a marked secret) and its headers. */
interface PostRoute {
  path: string
  body: fc.Arbitrary<Record<string, unknown>>
  headers: () => Record<string, string>
}
const postRoutes: PostRoute[] = [
  { path: '/register', body: fc.record({ email: fc.constant(`x@${f.domain}`), password: markedSecret }), headers: () => ({}) },
  { path: '/login', body: fc.record({ email: fc.constant(f.victim.pair.user.email), password: markedSecret }), headers: () => ({}) },
  { path: '/refresh', body: fc.record({ refresh_token: markedSecret }), headers: () => ({}) },
  { path: '/revoke', body: fc.record({ token: markedSecret, token_type_hint: fc.constant('refresh_token') }), headers: () => ({}) },
  { path: '/logout', body: fc.record({ refresh_token: markedSecret }), headers: caller },
  { path: '/password', body: fc.record({ current_password: markedSecret, new_password: markedSecret }), headers: caller }
]
const postRoute = fc.constantFrom(...postRoutes)
const BEARER_ROUTES = new Set(['/logout', '/password'])

function expectationFor(route: PostRoute, status: number | number[]): Expectation {
  return { status, ...(BEARER_ROUTES.has(route.path) ? { challenge: 'bare' as const } : {}) }
}

const token = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+-'), minLength: 1, maxLength: 20 })

/** Media types that are not application/json, with and without parameters. */
const nonJsonType = fc
  .oneof(
    fc.constantFrom(
      'text/plain',
      'text/plain; charset=utf-8',
      'text/json',
      'text/html',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=----x',
      'application/xml',
      'application/jsonx',
      'application/json-patch+json',
      'application/merge-patch+json',
      'application/ld+json',
      'application/javascript',
      'application/octet-stream',
      'application/*',
      '*/*',
      'json',
      'application',
      'application/',
      '/json',
      'application/json,text/plain',
      'image/png'
    ),
    fc.tuple(token, token, fc.option(fc.tuple(token, token))).map(([type, subtype, param]) => `${type}/${subtype}${param ? `; ${param[0]}=${param[1]}` : ''}`)
  )
  .filter((type) => !/^\s*application\/json\s*(;|$)/i.test(type))

/** Spellings of application/json the parser must accept. */
const jsonType = fc.constantFrom(
  'application/json',
  'Application/JSON',
  'application/json; charset=utf-8',
  'application/json;charset=UTF-8',
  'application/json; charset="utf-8"',
  'application/json ; charset=utf-8'
)

function post(route: PostRoute, payload: string | Buffer, headers: Record<string, string>) {
  return app.inject({ method: 'POST', url: url(route.path), headers: { ...route.headers(), ...headers }, payload })
}

t.test('a body that is not application/json is 415 on every POST route, and changes nothing', async (t) => {
  const request = fc.record({
    route: postRoute,
    type: fc.option(nonJsonType, { freq: 10 }), // sometimes no Content-Type at all
    body: fc.oneof(
      postRoute.chain((route) => route.body).map((body) => JSON.stringify(body)),
      anyString(200).filter((s) => s.length > 0),
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes))
    )
  })
  await fc.assert(
    fc.asyncProperty(request, async ({ route, type, body }) => {
      await probe(f, () => post(route, body, type === null ? {} : { 'content-type': type }), expectationFor(route, 415))
    }),
    params(300)
  )
  t.pass(statusTally())
})

/** JSON text that JSON.parse refuses (a leading BOM is stripped first, as the parser does). */
function isJson(text: string): boolean {
  try {
    JSON.parse(text.replace(/^\ufeff/, ''))
    return true
  } catch {
    return false
  }
}

/** Malformed JSON built from a valid body: cut, spliced, or classic mistakes; every one carries the marked secret. */
const malformed = fc
  .oneof(
    fc.tuple(postRoute.chain((route) => route.body), fc.nat()).map(([body, at]) => {
      const text = JSON.stringify(body)
      return text.slice(0, at % text.length)
    }),
    fc.tuple(postRoute.chain((route) => route.body), fc.nat(), fc.constantFrom(...',:{}[]"\\\'`x \u0000\ud800'), fc.boolean()).map(([body, at, char, replace]) => {
      const text = JSON.stringify(body)
      const i = at % text.length
      return text.slice(0, i) + char + text.slice(replace ? i + 1 : i)
    }),
    markedSecret.chain((secret) =>
      fc.constantFrom(
        `{'password':'${secret}'}`,
        `{"password":"${secret}",}`,
        `{password:"${secret}"}`,
        `{"password":"${secret}"`,
        `{"password":"${secret}"}}`,
        `{"password":"${secret}" "x":1}`,
        `{"password":"\\u12${secret}"}`,
        `{"password":"${secret}\\"}`,
        `{"n":01,"password":"${secret}"}`,
        `{"n":NaN,"password":"${secret}"}`,
        `{"n":undefined,"password":"${secret}"}`,
        `["${secret}"`,
        `"${secret}`,
        `${secret}`,
        `/*${secret}*/{}`
      )
    ),
    fc.constantFrom(' ', '\n', '{', '}', '[', 'nul', 'tru', '--1', '+1', '.5', '0x10', 'Infinity', '\u0000')
  )
  // An empty body is its own case (at /logout it means `{}`), below.
  .filter((text) => text.length > 0 && !isJson(text))

t.test('malformed JSON is 400 on every POST route, echoes nothing, and changes nothing', async (t) => {
  const request = fc.record({
    route: postRoute,
    type: jsonType,
    body: fc.oneof(
      { arbitrary: malformed.map((text) => Buffer.from(text)), weight: 5 },
      // Bytes that are not UTF-8 at all.
      { arbitrary: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((bytes) => Buffer.from(bytes)).filter((buf) => !isJson(buf.toString())), weight: 1 }
    )
  })
  await fc.assert(
    fc.asyncProperty(request, async ({ route, type, body }) => {
      await probe(f, () => post(route, body, { 'content-type': type }), { ...expectationFor(route, 400), secrets: [body.toString()] })
    }),
    params(300)
  )
  t.pass(statusTally())
})

t.test('an empty body with Content-Type: application/json is 400, except at /logout (docs/api.md, "POST /logout": 204)', async (t) => {
  for (const route of postRoutes.filter(({ path }) => path !== '/logout')) {
    await probe(f, () => post(route, '', { 'content-type': 'application/json' }), expectationFor(route, 400))
  }
  t.pass(statusTally())
})

t.test('application/json with any charset or spelling is parsed, never 415', async (t) => {
  await fc.assert(
    fc.asyncProperty(postRoute, jsonType, async (route, type) => {
      // An unknown property: parsed, then refused by the schema (400), so nothing is done.
      const body = objectText([['unknown_property', 1]])
      await probe(f, () => post(route, body, { 'content-type': type }), expectationFor(route, 400))
    }),
    params(60)
  )
  t.pass(statusTally())
})

t.test('a body over the 1 MiB limit is 413 on every POST route, and changes nothing', async (t) => {
  const LIMIT = 1_048_576
  for (const route of postRoutes) {
    // Valid JSON of the route's keys, just over the limit.
    const field = Object.keys(fc.sample(route.body, 1)[0])[0]
    const filler = 'x'.repeat(LIMIT)
    const body = JSON.stringify({ [field]: filler })
    t.ok(Buffer.byteLength(body) > LIMIT, `${route.path}: the body is over the limit`)
    const res = await probe(f, () => post(route, body, { 'content-type': 'application/json' }), expectationFor(route, 413))
    t.equal(res.statusCode, 413, `${route.path}: 413`)
  }
  // And a few more of random size and content, up to 1.5 MiB.
  await fc.assert(
    fc.asyncProperty(postRoute, fc.integer({ min: 1, max: LIMIT / 2 }), fc.string({ minLength: 1, maxLength: 3 }), async (route, over, unit) => {
      const body = unit.repeat(Math.ceil((LIMIT + over) / Buffer.byteLength(unit)))
      await probe(f, () => post(route, body, { 'content-type': 'application/json' }), expectationFor(route, 413))
    }),
    params(12)
  )
  t.pass(statusTally())
})

/** Names of headers that may be anything without changing what a request means. */
const HEADER_NAMES = [
  'user-agent',
  'accept',
  'accept-language',
  'accept-encoding',
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'forwarded',
  'cookie',
  'origin',
  'referer',
  'if-none-match',
  'range',
  'dpop',
  'x-http-method-override',
  'x-custom'
]
const extraHeaders = fc.dictionary(
  fc.oneof(fc.constantFrom(...HEADER_NAMES), token.map((name) => `x-${name}`)),
  fc.oneof({ arbitrary: headerValue(200), weight: 4 }, { arbitrary: headerValue(20_000), weight: 1 }),
  { maxKeys: 5 }
)

t.test('GET routes take random extra headers, query strings and bodies, and answer as usual', async (t) => {
  const routes: Array<[string, number, boolean]> = [
    [url('/me'), 200, true],
    [url('/sessions'), 200, true],
    [url('/verify'), 204, true],
    ['/.well-known/jwks.json', 200, false],
    ['/health/live', 200, false],
    ['/health/ready', 200, false]
  ]
  const request = fc.record({
    route: fc.constantFrom(...routes),
    headers: extraHeaders,
    query: fc.option(fc.oneof(fc.webQueryParameters(), anyString(100).map(percentEncode)), { freq: 2 }),
    body: fc.option(fc.record({ type: fc.oneof(jsonType, nonJsonType), payload: fc.oneof(anyString(100), jsonValue.map((v) => JSON.stringify(v))) }), { freq: 2 })
  })
  await fc.assert(
    fc.asyncProperty(request, async ({ route: [path, status, needsToken], headers, query, body }) => {
      const res = await probe(
        f,
        () =>
          app.inject({
            method: 'GET',
            url: query === null ? path : `${path}?${query}`,
            headers: { ...headers, ...(needsToken ? caller() : {}), ...(body ? { 'content-type': body.type } : {}) },
            ...(body ? { payload: body.payload } : {})
          }),
        { status }
      )
      if (path === '/.well-known/jwks.json') {
        for (const key of res.json().keys) {
          assert.ok(!['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((member) => member in key), `public members only: ${res.body}`)
        }
      }
    }),
    params(300)
  )
  t.pass(statusTally())
})

t.test('POST routes take random extra headers (User-Agent of any length and bytes...) and answer as usual', async (t) => {
  // Successful requests on purpose: a session records the User-Agent it was opened from.
  const holder = await f.newUser('refresh-holder')
  let current: TokenPairBody = holder
  const route = fc.constantFrom('login', 'register', 'refresh', 'revoke')
  await fc.assert(
    fc.asyncProperty(route, extraHeaders, fc.emailAddress(), async (which, headers, address) => {
      const send = (path: string, payload: unknown) => app.inject({ method: 'POST', url: url(path), headers, payload: payload as Record<string, unknown> })
      switch (which) {
        case 'login':
          await probe(f, () => send('/login', { email: f.victim.pair.user.email, password: PASSWORD }), { status: 200 })
          break
        case 'register':
          await probe(f, () => send('/register', { email: `${address.split('@')[0]}@${f.domain}`, password: PASSWORD }), { status: [201, 409] })
          break
        case 'refresh': {
          const res = await probe(f, () => send('/refresh', { refresh_token: current.refresh_token }), { status: 200 })
          current = res.json()
          f.genuineTokens.add(current.access_token).add(current.refresh_token)
          break
        }
        case 'revoke':
          await probe(f, () => send('/revoke', { token: 'not-a-token' }), { status: 200, unchangedAlways: true })
          break
      }
    }),
    params(60)
  )
  t.pass(statusTally())
})
