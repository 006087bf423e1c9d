// Property-based fuzzing with forged tokens signed by the app's real key: a genuine access or
// refresh token of the victim, with random noise (jku/x5u/jwk/x5c headers, extra claims) and at
// least one random defect from the list in docs/api.md, "Rejected tokens" (alg, typ, kid, crit; a bad signature; iss, aud,
// exp, nbf wrong or missing or of the wrong type; sub/sid not UUIDs or naming no session of the
// victim; required claims missing). Each is presented as a Bearer token on every Bearer route, and
// as a refresh token at /refresh, /logout and /revoke. Properties: a forged access token is always
// 401 with error="invalid_token"; a forged refresh token never refreshes, revokes or logs out
// anything; never a 5xx; the error shape of docs/api.md, "Conventions" with nothing leaked; and the database never
// changes (auth_events, the audit trail, excepted: see support.ts, dbState).
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { PASSWORD, bearer, decodeJwt, signWith } from '../helper.js'
import { canonicalUuid } from '../../src/auth/claims.js'
import {
  anyString,
  base64urlString,
  checkResponse,
  fuzzFixture,
  jsonValue,
  regression,
  params,
  pollutionKey,
  probe,
  rawSign,
  statusTally,
  unchangedAcross,
  url,
  type FuzzFixture,
  type Json,
  type Response
} from './support.js'

const f: FuzzFixture = await fuzzFixture(t)
const { app, privateKeyPem } = f

type Kind = 'access' | 'refresh'
const genuine = {
  access: decodeJwt(f.victim.pair.access_token),
  refresh: decodeJwt(f.victim.pair.refresh_token)
}
const TYP: Record<Kind, string> = { access: genuine.access.header.typ, refresh: genuine.refresh.header.typ }
const { kid: KID, alg: ALG } = genuine.access.header
const { iss: ISS, aud: AUD } = genuine.access.payload
const victimSid = genuine.access.payload.sid as string
const otherSid = decodeJwt(f.other.access_token).payload.sid as string
const nowSeconds = () => Math.floor(Date.now() / 1000)

t.test('the forger reproduces genuine tokens byte for byte (so a forgery differs only by its defects)', async (t) => {
  t.equal(rawSign(privateKeyPem, genuine.access.header, genuine.access.payload), f.victim.pair.access_token)
  t.equal(rawSign(privateKeyPem, genuine.refresh.header, genuine.refresh.payload), f.victim.pair.refresh_token)
  t.equal(signWith(privateKeyPem, genuine.refresh.header, genuine.refresh.payload), f.victim.pair.refresh_token, "and so does the helper's signWith")
})

// ---------------------------------------------------------------------------------------------
// Defects. Each one alone makes a token invalid ('invalid'), or leaves it validly formed but naming
// no live session of the victim ('identity': a well-formed UUID sub/sid of nobody, or of another
// user's session). A later defect of the same claim replaces an earlier one; no combination turns
// the token back into a valid token of the victim (the identity defects of sub and sid never name
// the victim or, together, another user's live session: sub is only ever a random UUID).

interface Forgery {
  header: Json
  payload: Json
  /** Replaces the signature (or the whole token's shape) after signing. */
  mangle?: (token: string) => string
  defects: string[]
  /** What the last defect applied to each header member, claim or the signature made it. */
  kinds: Map<string, 'invalid' | 'identity'>
}

/** Only identity defects are left (a later defect of a claim replaces an earlier one of it). */
const identityOnly = (forgery: Forgery) => [...forgery.kinds.values()].every((kind) => kind === 'identity')

type Defect = (forgery: Forgery) => void

const DELETE = Symbol('delete')
function set(target: Json, key: string, value: unknown) {
  if (value === DELETE) delete target[key]
  else Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true })
}

const nonString = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(jsonValue, { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), jsonValue, { maxKeys: 3 })
)
const nonNumber = fc.oneof(
  anyString(20),
  fc.integer({ min: nowSeconds() + 3600, max: nowSeconds() + 10 ** 8 }).map(String), // a future time, as a string
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), jsonValue, { maxKeys: 2 })
)
const notUuid = fc.oneof(anyString(40), fc.uuid().map((id) => `${id}x`), fc.uuid().map((id) => `{${id}}`), fc.uuid().map((id) => id.replaceAll('-', ''))).filter((s) => canonicalUuid(s) === undefined)

const normalizedTyp = (typ: string) => typ.toLowerCase().replace(/^application\//, '')

function headerDefect(name: string, value: fc.Arbitrary<unknown>): fc.Arbitrary<Defect> {
  return value.map((v) => (forgery: Forgery) => {
    set(forgery.header, name, v)
    forgery.defects.push(`header.${name}=${v === DELETE ? '(deleted)' : JSON.stringify(v)}`)
    forgery.kinds.set(`header.${name}`, 'invalid')
  })
}
function claimDefect(name: string, value: fc.Arbitrary<unknown>, kind: 'invalid' | 'identity' = 'invalid'): fc.Arbitrary<Defect> {
  return value.map((v) => (forgery: Forgery) => {
    set(forgery.payload, name, v)
    forgery.defects.push(`${name}=${v === DELETE ? '(deleted)' : JSON.stringify(v)}`)
    forgery.kinds.set(name, kind)
  })
}

const otherKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
const signatureDefect: fc.Arbitrary<Defect> = fc
  .oneof(
    fc.integer({ min: 1, max: 86 }).map((n) => ({ name: `signature truncated by ${n}`, mangle: (token: string) => token.slice(0, -n) })),
    base64urlString(120).map((sig) => ({ name: 'random signature', mangle: (token: string) => token.slice(0, token.lastIndexOf('.') + 1) + sig })),
    fc.tuple(fc.nat({ max: 80 }), fc.nat({ max: 63 })).map(([at, by]) => ({
      name: `signature character ${at} changed`,
      mangle: (token: string) => {
        const dot = token.lastIndexOf('.')
        const chars = [...token.slice(dot + 1)]
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
        chars[at] = alphabet[(alphabet.indexOf(chars[at]) + 1 + (by % 63)) % 64]
        return token.slice(0, dot + 1) + chars.join('')
      }
    })),
    fc.constant({ name: 'signed by another Ed25519 key under the real kid', mangle: (token: string) => {
      const [h, p] = token.split('.')
      return rawSign(otherKey, JSON.parse(Buffer.from(h, 'base64url').toString()), JSON.parse(Buffer.from(p, 'base64url').toString()))
    } }),
    fc.constant({ name: 'no signature', mangle: (token: string) => token.slice(0, token.lastIndexOf('.') + 1) }),
    fc.constant({ name: 'no signature segment', mangle: (token: string) => token.slice(0, token.lastIndexOf('.')) }),
    base64urlString(20).map((extra) => ({ name: 'a fourth segment', mangle: (token: string) => `${token}.${extra}` }))
  )
  .map(({ name, mangle }) => (forgery: Forgery) => {
    const previous = forgery.mangle
    forgery.mangle = (token) => mangle(previous ? previous(token) : token)
    forgery.defects.push(name)
    forgery.kinds.set('signature', 'invalid')
  })

function defectsFor(kind: Kind): fc.Arbitrary<Defect> {
  const typ = TYP[kind]
  const otherTyp = TYP[kind === 'access' ? 'refresh' : 'access']
  const claims: Array<fc.Arbitrary<Defect>> = [
    headerDefect('alg', fc.oneof(fc.constantFrom('none', 'None', 'NONE', 'nOnE', 'HS256', 'HS512', 'RS256', 'PS256', 'ES256', 'ES256K', 'ES512', 'EdDSA ', 'eddsa', 'EDDSA', 'Ed25519', '', DELETE), anyString(10).filter((s) => s !== ALG), nonString)),
    headerDefect('typ', fc.oneof(fc.constantFrom(DELETE, 'JWT', 'jwt', 'JOSE', 'application/jwt', otherTyp, `application/${otherTyp}`, `${typ} `, ` ${typ}`, `${typ}\u0000`), anyString(12).filter((s) => normalizedTyp(s) !== typ), nonString)),
    headerDefect('kid', fc.oneof(fc.constantFrom(DELETE, '', `${KID} `, `${KID}\u0000`, KID.slice(1)), pollutionKey, anyString(30).filter((s) => s !== KID), nonString)),
    headerDefect('crit', fc.oneof(
      fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }),
      fc.constantFrom([], ['alg'], ['kid'], ['exp'], ['b64'], ['crit'], [''], 'exp', 1, true, { b64: false }),
      fc.array(nonString, { minLength: 1, maxLength: 2 })
    )),
    claimDefect('iss', fc.oneof(fc.constantFrom(DELETE, [ISS], `${ISS} `, ISS.toUpperCase() === ISS ? `${ISS}x` : ISS.toUpperCase(), `${ISS}/`), anyString(30).filter((s) => s !== ISS), nonString)),
    claimDefect('aud', fc.oneof(
      fc.constantFrom(DELETE, [], [`${AUD}x`], [AUD, 5], `${AUD} `, `${AUD}/`),
      anyString(30).filter((s) => s !== AUD),
      fc.array(anyString(20).filter((s) => s !== AUD), { maxLength: 3 }),
      nonString.filter((v) => !Array.isArray(v))
    )),
    claimDefect('exp', fc.oneof(fc.constant(DELETE), fc.integer({ min: -(10 ** 10), max: nowSeconds() - 60 }), fc.double({ min: 0, max: nowSeconds() - 60, noNaN: true }), nonNumber)),
    claimDefect('nbf', fc.oneof(fc.integer({ min: nowSeconds() + 60, max: 2 ** 40 }), fc.constantFrom(1e20, Number.MAX_SAFE_INTEGER), nonNumber)),
    claimDefect('iat', fc.constant(DELETE)),
    claimDefect('sub', fc.oneof(fc.constant(DELETE), notUuid, nonString)),
    claimDefect('sid', fc.oneof(fc.constant(DELETE), notUuid, nonString)),
    claimDefect('jti', kind === 'refresh' ? fc.oneof(fc.constant(DELETE), nonString) : fc.constant(DELETE)),
    // Well formed, but nobody's (or not the victim's) session.
    claimDefect('sub', fc.uuid().filter((id) => id !== f.victim.pair.user.id), 'identity'),
    claimDefect('sid', fc.oneof(fc.uuid(), fc.constant(otherSid)).filter((id) => id !== victimSid), 'identity'),
    signatureDefect
  ]
  if (kind === 'access') claims.push(claimDefect('client_id', fc.constant(DELETE)))
  return fc.oneof(...claims)
}

/** Headers and claims that change nothing about a token's validity (jku/x5u/jwk/x5c are never used to find a key). */
const headerNoise = fc.record(
  {
    jku: fc.webUrl(),
    x5u: fc.webUrl(),
    jwk: fc.record({ kty: fc.constant('OKP'), crv: fc.constant('Ed25519'), x: base64urlString(43) }),
    x5c: fc.array(base64urlString(200), { maxLength: 2 }),
    cty: fc.constantFrom('JWT', 'json'),
    extra: jsonValue
  },
  { requiredKeys: [] }
)
const STANDARD = new Set(['iss', 'aud', 'sub', 'sid', 'jti', 'iat', 'exp', 'nbf', 'client_id'])
const claimNoise = fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 10 }), pollutionKey, fc.constantFrom('scope', 'roles', 'admin', 'email', 'cnf', 'act')), jsonValue), { maxLength: 4 })

/** The genuine token with noise only: still valid, so the forgeries below fail by their defects alone. */
function noisy(kind: Kind): fc.Arbitrary<string> {
  return fc.tuple(headerNoise, claimNoise).map(([hNoise, cNoise]) => {
    const payload = { ...genuine[kind].payload }
    for (const [key, value] of cNoise) if (!STANDARD.has(key)) set(payload, key, value)
    return rawSign(privateKeyPem, { ...genuine[kind].header, ...hNoise }, payload)
  })
}

function forgery(kind: Kind): fc.Arbitrary<{ token: string, defects: string[], identityOnly: boolean }> {
  return fc
    .tuple(headerNoise, claimNoise, fc.array(defectsFor(kind), { minLength: 1, maxLength: 3 }))
    .map(([hNoise, cNoise, defects]) => {
      const forged: Forgery = {
        header: { ...genuine[kind].header, ...hNoise },
        payload: { ...genuine[kind].payload },
        defects: [],
        kinds: new Map()
      }
      for (const [key, value] of cNoise) if (!STANDARD.has(key)) set(forged.payload, key, value)
      for (const defect of defects) defect(forged)
      const signed = rawSign(privateKeyPem, forged.header, forged.payload)
      const token = forged.mangle ? forged.mangle(signed) : signed
      // Two signature defects can undo each other (a fourth segment, then the last segment cut
      // off again): then the signature is the genuine one and only the other defects count.
      if (token === signed) forged.kinds.delete('signature')
      return { token, defects: forged.defects, identityOnly: identityOnly(forged), genuine: forged.kinds.size === 0 }
    })
    .filter(({ token, genuine }) => !genuine && token !== f.victim.pair.access_token && token !== f.victim.pair.refresh_token)
}

// ---------------------------------------------------------------------------------------------

/** Every Bearer route, each with a request that would do real damage if the token were accepted. */
const bearerRequests: Array<(token: string) => Promise<Response>> = [
  (token) => app.inject({ method: 'GET', url: url('/me'), headers: bearer(token) }),
  (token) => app.inject({ method: 'GET', url: url('/sessions'), headers: bearer(token) }),
  (token) => app.inject({ method: 'GET', url: url('/verify'), headers: bearer(token) }),
  (token) => app.inject({ method: 'DELETE', url: url(`/sessions/${decodeJwt(f.victim.second.access_token).payload.sid}`), headers: bearer(token) }),
  (token) => app.inject({ method: 'POST', url: url('/logout'), headers: bearer(token), payload: { all_devices: true } }),
  (token) => app.inject({ method: 'POST', url: url('/password'), headers: bearer(token), payload: { current_password: PASSWORD, new_password: `${PASSWORD}!` } })
]

t.test('noise alone (jku, x5u, jwk, x5c, extra claims) leaves a genuine access token valid: the baseline', async (t) => {
  await fc.assert(
    fc.asyncProperty(noisy('access'), async (token) => {
      await unchangedAcross(f, async () => {
        const res = await app.inject({ method: 'GET', url: url('/verify'), headers: bearer(token) })
        checkResponse(f, res, { status: 204 })
        if (res.headers['x-user-id'] !== f.victim.pair.user.id) throw new Error(`the token names ${String(res.headers['x-user-id'])}`)
      })
    }),
    params(50)
  )
  t.pass(statusTally())
})

t.test('a forged access token is 401 with error="invalid_token" on every Bearer route, and changes nothing', async (t) => {
  await fc.assert(
    fc.asyncProperty(forgery('access'), async ({ token }) => {
      await unchangedAcross(f, async () => {
        for (const send of bearerRequests) {
          const res = await send(token)
          checkResponse(f, res, { status: 401, challenge: 'invalid_token', secrets: [token] })
          if ('x-user-id' in res.headers) throw new Error('a rejected token names a user')
        }
      })
    }),
    params(200)
  )
  t.pass(statusTally())
})

t.test('a forged refresh token never refreshes, revokes or logs out anything', async (t) => {
  const caller = bearer(f.victim.second.access_token)
  await fc.assert(
    fc.asyncProperty(forgery('refresh'), async ({ token, identityOnly }) => {
      const secrets = [token]
      await unchangedAcross(f, async () => {
        const refreshed = await app.inject({ method: 'POST', url: url('/refresh'), payload: { refresh_token: token } })
        checkResponse(f, refreshed, { status: 401, secrets })
        const revoked = await app.inject({ method: 'POST', url: url('/revoke'), payload: { token, token_type_hint: 'refresh_token' } })
        checkResponse(f, revoked, { status: 200, secrets })
        // At /logout a validly signed token of another user is 403, and one of the caller whose
        // session is not there (any more) is 204; either way nothing is deleted.
        const loggedOut = await app.inject({ method: 'POST', url: url('/logout'), headers: caller, payload: { refresh_token: token } })
        checkResponse(f, loggedOut, {
          status: identityOnly ? [204, 403] : 401,
          challenge: 'bare', // the access token is fine
          secrets
        })
      })
    }),
    params(200)
  )
  t.pass(statusTally())
})

t.test('JWTs of any shape signed with the real key (payload or header not even an object) are 401', async (t) => {
  const shape = fc.oneof(
    jsonValue.map((payload) => ({ header: genuine.access.header, payload })),
    jsonValue.map((header) => ({ header, payload: genuine.access.payload })),
    fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 8 }).map((payload) => ({ header: genuine.access.header, payload })),
    fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 8 }).map((header) => ({ header, payload: genuine.access.payload }))
  )
  await fc.assert(
    fc.asyncProperty(shape, fc.nat({ max: bearerRequests.length - 1 }), async ({ header, payload }, i) => {
      const token = rawSign(privateKeyPem, header, payload)
      fc.pre(token !== f.victim.pair.access_token)
      await probe(f, () => bearerRequests[i](token), { status: 401, challenge: 'invalid_token', secrets: [token], unchangedAlways: true })
      await probe(f, () => app.inject({ method: 'POST', url: url('/refresh'), payload: { refresh_token: token } }), { status: 401, secrets: [token], unchangedAlways: true })
    }),
    params(200)
  )
  t.pass(statusTally())
})

t.test('an access token whose iat is of the wrong type, or in the future, is 401', async (t) => {
  // Known gap, reported: fast-jwt checks iat only under maxAge, which is not set, so `iat: "x"`,
  // `iat: null` or an iat a year ahead passes; docs/api.md, "Rejected tokens", lists iat under CLOCK_TOLERANCE.
  const iat = fc.oneof(nonNumber, fc.integer({ min: nowSeconds() + 3600, max: nowSeconds() + 10 ** 8 }))
  const property = fc.asyncProperty(iat, async (value) => {
    const token = rawSign(privateKeyPem, genuine.access.header, { ...genuine.access.payload, iat: value, jti: randomUUID() })
    await probe(f, () => bearerRequests[0](token), { status: 401, challenge: 'invalid_token', unchangedAlways: true })
  })
  await regression(t, 'regression: an access token with iat of the wrong type or far in the future is refused', property, params(20))
})
