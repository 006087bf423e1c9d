// Property-based fuzzing of how a caller is identified: random Authorization headers (schemes,
// separators, base64url segments, JWT-shaped strings with random headers and payloads, huge
// values) on every Bearer route, tokens in the query string, and random path parameters for
// DELETE /sessions/:id ('%00', very long, SQL-ish, UUID look-alikes, other users' sessions).
// Properties: never a 5xx; the error shape of docs/api.md, "Conventions" with nothing leaked; every 401 of a Bearer
// route carries WWW-Authenticate; and nothing in the database changes (auth_events, the audit
// trail, excepted: see support.ts, dbState).
import fc from 'fast-check'
import t from 'tap'
import { PASSWORD, bearer, decodeJwt } from '../helper.js'
import {
  anyString,
  b64url,
  base64urlString,
  fuzzFixture,
  headerValue,
  jsonValue,
  regression,
  params,
  percentEncode,
  probe,
  statusTally,
  url,
  type Challenge,
  type Response,
  type FuzzFixture
} from './support.js'

const f: FuzzFixture = await fuzzFixture(t)
const { app } = f
const victimAccess = decodeJwt(f.victim.pair.access_token)
const victimSessionIds = [f.victim.pair, f.victim.second].map((pair) => decodeJwt(pair.access_token).payload.sid as string)
const otherSessionId = decodeJwt(f.other.access_token).payload.sid as string

/**
 * Every route that takes a Bearer token, each with a request that would do something real if the
 * token were accepted (end the victim's second session, change the password...).
 */
const bearerRoutes: Array<{ name: string, send: (headers: Record<string, string>, query?: string) => Promise<Response> }> = [
  { name: 'GET /me', send: (headers, query = '') => app.inject({ method: 'GET', url: url(`/me${query}`), headers }) },
  { name: 'GET /sessions', send: (headers, query = '') => app.inject({ method: 'GET', url: url(`/sessions${query}`), headers }) },
  { name: 'GET /verify', send: (headers, query = '') => app.inject({ method: 'GET', url: url(`/verify${query}`), headers }) },
  {
    name: 'DELETE /sessions/:id',
    send: (headers, query = '') => app.inject({ method: 'DELETE', url: url(`/sessions/${victimSessionIds[1]}${query}`), headers })
  },
  {
    name: 'POST /logout',
    send: (headers, query = '') => app.inject({ method: 'POST', url: url(`/logout${query}`), headers, payload: { all_devices: true } })
  },
  {
    name: 'POST /password',
    send: (headers, query = '') =>
      app.inject({ method: 'POST', url: url(`/password${query}`), headers, payload: { current_password: PASSWORD, new_password: `${PASSWORD}!` } })
  }
]

const authScheme = fc.oneof(
  fc.constantFrom('Bearer', 'bearer', 'BEARER', 'BeArEr', 'Basic', 'Digest', 'Token', 'JWT', 'DPoP', 'MAC', 'Negotiate', 'OAuth', 'Bearer:', 'Bearer=', 'Bearer,', ''),
  fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/'), minLength: 1, maxLength: 12 })
)
const separator = fc.constantFrom(' ', '  ', '\t', '', ',', ':', '=', ' \t ', '   ')

const randomObject = fc.dictionary(fc.string({ maxLength: 10 }), jsonValue, { maxKeys: 6 })
/** JWT-shaped credentials that are not genuine: random segments, random JSON, or a genuine token's parts with a made-up signature. */
const credential = fc.oneof(
  fc.array(base64urlString(60), { minLength: 1, maxLength: 6 }).map((parts) => parts.join('.')),
  fc.tuple(fc.oneof(randomObject, jsonValue), fc.oneof(randomObject, jsonValue), base64urlString(100)).map(([h, p, s]) => `${b64url(h)}.${b64url(p)}.${s}`),
  fc
    .tuple(
      fc.record({ alg: fc.constantFrom('EdDSA', 'none', 'HS256', 'ES256'), typ: fc.constantFrom('at+jwt', 'JWT', 'refresh+jwt'), kid: fc.constantFrom(victimAccess.header.kid, 'x') }),
      fc.uint8Array({ minLength: 0, maxLength: 80 })
    )
    .map(([header, sig]) => `${b64url(header)}.${b64url(victimAccess.payload)}.${Buffer.from(sig).toString('base64url')}`),
  // A genuine token with something after it, or the wrong kind of genuine token.
  fc.tuple(fc.constantFrom(f.victim.pair.access_token, f.victim.pair.refresh_token), fc.string({ unit: fc.constantFrom(...'abcXYZ09.-_'), minLength: 1, maxLength: 10 })).map(([token, junk]) => `${token} ${junk}`),
  fc.constant(f.victim.pair.refresh_token),
  headerValue(300),
  fc.tuple(base64urlString(40).filter((s) => s.length > 0), fc.integer({ min: 8_000, max: 60_000 })).map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)))
)
const authorization = fc.oneof(
  { arbitrary: fc.tuple(authScheme, separator, credential).map(([scheme, sep, cred]) => `${scheme}${sep}${cred}`), weight: 6 },
  { arbitrary: headerValue(100), weight: 1 },
  { arbitrary: fc.constantFrom('', ' ', 'Bearer', 'Bearer ', 'Bearer null', 'Bearer undefined', 'Bearer [object Object]', `Basic ${Buffer.from(`${f.victim.pair.user.email}:${PASSWORD}`).toString('base64')}`), weight: 1 }
)

/** RFC 6750: `error="invalid_token"` when a token was sent, the bare challenge when none was. */
function challengeFor(value: string): Challenge {
  if (/^Bearer +\S+ *$/i.test(value)) return 'invalid_token'
  if (!/^bearer/i.test(value)) return 'bare'
  return 'either'
}

t.test('a random Authorization header is 401 on every Bearer route, with a challenge, and changes nothing', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: bearerRoutes.length - 1 }), authorization, async (i, value) => {
      await probe(f, () => bearerRoutes[i].send({ authorization: value }), {
        status: 401,
        challenge: challengeFor(value),
        secrets: [value],
        unchangedAlways: true
      })
    }),
    params(300)
  )
  t.pass(statusTally())
})

t.test('a token in the query string never authenticates (docs/api.md, "Conventions": never in a query string)', async (t) => {
  const name = fc.oneof(fc.constantFrom('access_token', 'token', 'bearer', 'authorization', 'jwt', 'Authorization'), fc.string({ minLength: 1, maxLength: 10 }))
  const value = fc.oneof(
    fc.constantFrom(f.victim.pair.access_token, `Bearer ${f.victim.pair.access_token}`, f.victim.second.access_token),
    anyString(50)
  )
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: bearerRoutes.length - 1 }), fc.array(fc.tuple(name, value), { minLength: 1, maxLength: 3 }), async (i, pairs) => {
      const query = `?${pairs.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&')}`
      await probe(f, () => bearerRoutes[i].send({}, query), { status: 401, challenge: 'bare', unchangedAlways: true })
    }),
    params(150)
  )
  t.pass(statusTally())
})

/** Path parameters for DELETE /sessions/:id, already encoded for the URL; never one of the caller's own sessions. */
const sessionIdParam = fc
  .oneof(
    fc.uuid().map((id) => id), // well-formed, no such session
    fc.constantFrom(otherSessionId, otherSessionId.toUpperCase()), // another user's: "not yours" is 404
    anyString(60).map(percentEncode),
    fc.constantFrom('%00', '%', '%%', '%zz', '%0', '%C0%AF', '%ED%A0%80', '%FF', '%2F', '%2e%2e', '%5C', '%3F', '%23', '%20', '..%2F..%2Fhealth%2Flive', 'null', 'undefined', '0', '-1', '1e309'),
    fc
      .constantFrom(
        "' OR '1'='1",
        "'; DROP TABLE user_sessions;--",
        "00000000-0000-0000-0000-000000000000' OR 1=1--",
        `${otherSessionId}' OR user_id IS NOT NULL--`,
        '1 UNION SELECT password_hash FROM users',
        '$1',
        '\\x00',
        '{"$ne":null}',
        `${otherSessionId}\u0000`,
        ` ${otherSessionId} `,
        `{${otherSessionId}}`,
        `urn:uuid:${otherSessionId}`,
        otherSessionId.replaceAll('-', '')
      )
      .map(percentEncode),
    fc.tuple(fc.integer({ min: 90, max: 5_000 }), fc.constantFrom('a', '0', '%00', '-', otherSessionId)).map(([n, unit]) => unit.repeat(Math.ceil(n / unit.length))),
    fc.tuple(fc.uuid(), fc.constantFrom('%00', '%0A', '%20', '.json', '/', '/x', '?x=1', '#x', ';x')).map(([id, suffix]) => `${id}${suffix}`)
  )
  .filter((param) => {
    let decoded = param
    try {
      decoded = decodeURIComponent(param)
    } catch {
      // Not percent-encoding the router can decode: compared as it is.
    }
    return !victimSessionIds.some((own) => decoded.toLowerCase().includes(own))
  })

t.test('DELETE /sessions/:id with a random id: 404 (or 400/414 for a bad URL), and nothing is deleted', async (t) => {
  await fc.assert(
    fc.asyncProperty(sessionIdParam, fc.boolean(), async (param, withToken) => {
      const headers = withToken ? bearer(f.victim.pair.access_token) : {}
      await probe(f, () => app.inject({ method: 'DELETE', url: url(`/sessions/${param}`), headers }), {
        status: withToken ? [400, 404, 414] : [400, 401, 404, 414],
        challenge: 'bare',
        unchangedAlways: true
      })
    }),
    params(300)
  )
  t.pass(statusTally())
})

t.test('DELETE /sessions/:id with an id over 100 characters answers in the error shape of docs/api.md, "Conventions"', async (t) => {
  // Fastify rejects a path parameter over its maxParamLength (100) in the router, before any hook;
  // src/plugins/errors.ts (frameworkErrors) gives it the standard shape and a fixed message.
  const property = fc.asyncProperty(fc.integer({ min: 101, max: 2_000 }), async (n) => {
    await probe(f, () => app.inject({ method: 'DELETE', url: url(`/sessions/${'a'.repeat(n)}`), headers: bearer(f.victim.pair.access_token) }), {
      status: [404, 414],
      unchangedAlways: true
    })
  })
  await regression(t, 'regression: router errors (an over-long path parameter) have the standard error shape', property, params(5))
})
