// Forged, confused and broken tokens (docs/api.md, "Rejected tokens"). Every variant is built from a genuine
// token of a live session, so the only thing wrong with it is the thing under test.
import { createHmac, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import t, { type Test } from 'tap'
import {
  API_PREFIX,
  bearer,
  buildTestApp,
  countSessions,
  decodeJwt,
  errorShape,
  me,
  refresh,
  registerUser,
  signWith,
  type TokenPairBody
} from '../helper.js'

const { app, privateKeyPem } = await buildTestApp(t)

type Json = Record<string, unknown>
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** Signs exactly the given header and payload, by default with the app's own key. */
function rawSign(header: Json, payload: Json, key: KeyObject | string = privateKeyPem): string {
  return signWith(key, header, payload)
}

function hs256(header: Json, payload: Json, secret: string | Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

function unsigned(header: Json, payload: Json, signature = ''): string {
  return `${b64(header)}.${b64(payload)}.${signature}`
}

/** Asserts the answer every bad access token must get: 401, the RFC 6750 challenge, the error shape. */
async function assertRejectedAsAccess(t: Test, token: string, name: string) {
  for (const path of ['/me', '/verify', '/sessions']) {
    const res = await app.inject({ method: 'GET', url: `${API_PREFIX}${path}`, headers: bearer(token) })
    t.equal(res.statusCode, 401, `${name}: GET ${path} is 401`)
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', `${name}: GET ${path} challenge`)
    t.match(res.json(), errorShape(401), `${name}: GET ${path} error shape`)
    t.notOk('x-user-id' in res.headers, `${name}: GET ${path} names nobody`)
  }
}

/** A fresh user and the decoded parts of their genuine access token. */
async function genuine() {
  const pair = await registerUser(app)
  const access = decodeJwt(pair.access_token)
  const refreshToken = decodeJwt(pair.refresh_token)
  return { pair, access, refreshToken, userId: pair.user.id }
}

/** After every attack the genuine session is untouched and still works. */
async function assertUnharmed(t: Test, pair: TokenPairBody) {
  t.equal(await countSessions(app, pair.user.id), 1, 'the session was not deleted')
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'the genuine access token still works')
}

t.test('a genuine token passes (the baseline the forgeries below are measured against)', async (t) => {
  const { pair, access, refreshToken } = await genuine()
  t.equal((await me(app, pair.access_token)).statusCode, 200)
  t.equal(rawSign(access.header, access.payload), pair.access_token, 'the forger reproduces a genuine access token byte for byte')
  t.equal(rawSign(refreshToken.header, refreshToken.payload), pair.refresh_token, 'and a genuine refresh token')
})

t.test('type confusion: a refresh token is not an access token, and the other way round', async (t) => {
  const { pair, access, refreshToken } = await genuine()
  await assertRejectedAsAccess(t, pair.refresh_token, 'refresh token as Bearer')
  await assertRejectedAsAccess(t, rawSign({ ...refreshToken.header, typ: 'at+jwt' }, refreshToken.payload), 'refresh claims with typ at+jwt')

  const asRefresh = await refresh(app, pair.access_token)
  t.equal(asRefresh.statusCode, 401, 'an access token at /refresh is 401')
  t.match(asRefresh.json(), errorShape(401))
  const atTyp = await refresh(app, rawSign({ ...refreshToken.header, typ: 'at+jwt' }, refreshToken.payload))
  t.equal(atTyp.statusCode, 401, 'refresh claims with typ at+jwt at /refresh is 401')
  for (const typ of [undefined, 'JWT', 'jwt', 'at+JWT ', '']) {
    const header = { ...access.header, typ }
    if (typ === undefined) delete (header as Json).typ
    await assertRejectedAsAccess(t, rawSign(header, access.payload), `typ ${JSON.stringify(typ)} as access`)
    const refreshHeader = { ...refreshToken.header, typ }
    if (typ === undefined) delete (refreshHeader as Json).typ
    t.equal((await refresh(app, rawSign(refreshHeader, refreshToken.payload))).statusCode, 401, `typ ${JSON.stringify(typ)} at /refresh`)
  }
  await assertUnharmed(t, pair)
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 200, 'the genuine refresh token still works')
})

t.test('alg: none in any spelling is rejected', async (t) => {
  const { pair, access, refreshToken } = await genuine()
  const signature = pair.access_token.split('.')[2]
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    await assertRejectedAsAccess(t, unsigned({ ...access.header, alg }, access.payload), `alg ${alg}, no signature`)
    await assertRejectedAsAccess(t, unsigned({ ...access.header, alg }, access.payload, signature), `alg ${alg}, old signature kept`)
    const forgedRefresh = unsigned({ ...refreshToken.header, alg }, refreshToken.payload)
    t.equal((await refresh(app, forgedRefresh)).statusCode, 401, `alg ${alg} at /refresh`)
  }
  await assertUnharmed(t, pair)
})

t.test('HS256 signed with the public key (or its JWK) as the secret is rejected', async (t) => {
  const { pair, access, refreshToken } = await genuine()
  const publicKey = createPublicKey(privateKeyPem)
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>
  const secrets: Record<string, string | Buffer> = {
    'SPKI PEM': publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    'raw public key': Buffer.from(jwk.x, 'base64url'),
    'JWK x': jwk.x,
    'JWKS document': (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).body
  }
  for (const [name, secret] of Object.entries(secrets)) {
    await assertRejectedAsAccess(t, hs256({ ...access.header, alg: 'HS256' }, access.payload, secret), `HS256 with the ${name}`)
    t.equal(
      (await refresh(app, hs256({ ...refreshToken.header, alg: 'HS256' }, refreshToken.payload, secret))).statusCode,
      401,
      `HS256 refresh token with the ${name}`
    )
  }
  await assertUnharmed(t, pair)
})

t.test('an algorithm other than the configured one is rejected, even with the right kid', async (t) => {
  const { pair, access } = await genuine()
  const { privateKey: ecKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  await assertRejectedAsAccess(t, rawSign({ ...access.header, alg: 'ES256' }, access.payload, ecKey), 'ES256 with our kid')
  await assertRejectedAsAccess(t, rawSign({ ...access.header, alg: 'ES256' }, access.payload), 'EdDSA signature labelled ES256')
  await assertUnharmed(t, pair)
})

t.test('a tampered payload, a bad or truncated signature are rejected', async (t) => {
  const { pair, access, refreshToken } = await genuine()
  const other = await registerUser(app)
  const [h, p, s] = pair.access_token.split('.')
  const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11)
  const cases: Record<string, string> = {
    'sub changed, signature kept': `${h}.${b64({ ...access.payload, sub: other.user.id })}.${s}`,
    'sid changed, signature kept': `${h}.${b64({ ...access.payload, sid: decodeJwt(other.access_token).payload.sid })}.${s}`,
    'exp extended, signature kept': `${h}.${b64({ ...access.payload, exp: access.payload.exp + 86_400 })}.${s}`,
    'header changed, signature kept': `${b64({ ...access.header, extra: 1 })}.${p}.${s}`,
    'one signature character flipped': `${h}.${p}.${flipped}`,
    'signature truncated': `${h}.${p}.${s.slice(0, -4)}`,
    'signature emptied': `${h}.${p}.`,
    'signature of another token': `${h}.${p}.${other.access_token.split('.')[2]}`,
    'no signature part': `${h}.${p}`,
    'four parts': `${h}.${p}.${s}.${s}`
  }
  for (const [name, token] of Object.entries(cases)) await assertRejectedAsAccess(t, token, name)

  const [rh, rp, rs] = pair.refresh_token.split('.')
  const refreshCases: Record<string, string> = {
    'refresh sid changed': `${rh}.${b64({ ...refreshToken.payload, sid: decodeJwt(other.refresh_token).payload.sid })}.${rs}`,
    'refresh exp extended': `${rh}.${b64({ ...refreshToken.payload, exp: refreshToken.payload.exp + 86_400 })}.${rs}`,
    'refresh signature truncated': `${rh}.${rp}.${rs.slice(0, -4)}`
  }
  for (const [name, token] of Object.entries(refreshCases)) t.equal((await refresh(app, token)).statusCode, 401, name)
  await assertUnharmed(t, pair)
  await assertUnharmed(t, other)
})

t.test('a wrong or missing iss or aud is rejected', async (t) => {
  const { pair, access, refreshToken } = await genuine()
  const { iss, aud, ...rest } = access.payload
  t.ok(iss && aud, 'genuine tokens carry iss and aud')
  const cases: Record<string, Json> = {
    'wrong iss': { ...access.payload, iss: 'https://evil.example' },
    'missing iss': { ...rest, aud },
    'iss of another case': { ...access.payload, iss: String(iss).toUpperCase() + 'X' },
    'wrong aud': { ...access.payload, aud: 'another-api' },
    'missing aud': { ...rest, iss },
    'aud list without ours': { ...access.payload, aud: ['another-api', 'a-third-one'] }
  }
  for (const [name, payload] of Object.entries(cases)) await assertRejectedAsAccess(t, rawSign(access.header, payload), name)

  const { iss: _i, ...noIss } = refreshToken.payload
  t.equal((await refresh(app, rawSign(refreshToken.header, { ...refreshToken.payload, iss: 'evil' }))).statusCode, 401, 'refresh: wrong iss')
  t.equal((await refresh(app, rawSign(refreshToken.header, { ...refreshToken.payload, aud: 'other' }))).statusCode, 401, 'refresh: wrong aud')
  t.equal((await refresh(app, rawSign(refreshToken.header, noIss))).statusCode, 401, 'refresh: missing iss')
  await assertUnharmed(t, pair)
})

t.test('exp: in the past beyond CLOCK_TOLERANCE or missing is rejected; within it accepted; nbf in the future rejected', async (t) => {
  const { pair, access } = await genuine()
  const now = nowSeconds()
  const { exp: _exp, ...noExp } = access.payload
  const rejected: Record<string, Json> = {
    'exp an hour ago': { ...access.payload, iat: now - 7200, exp: now - 3600 },
    'exp 30 s ago (tolerance is 5 s)': { ...access.payload, iat: now - 930, exp: now - 30 },
    'exp missing': noExp,
    'nbf in an hour': { ...access.payload, nbf: now + 3600 },
    'nbf in 60 s': { ...access.payload, nbf: now + 60 }
  }
  for (const [name, payload] of Object.entries(rejected)) await assertRejectedAsAccess(t, rawSign(access.header, payload), name)
  await assertRejectedAsAccess(t, rawSign(access.header, { ...access.payload, exp: String(now + 600) }), 'exp not a number')

  const accepted: Record<string, Json> = {
    'exp 2 s ago (within the tolerance)': { ...access.payload, iat: now - 900, exp: now - 2 },
    'nbf in 2 s (within the tolerance)': { ...access.payload, nbf: now + 2 }
  }
  for (const [name, payload] of Object.entries(accepted)) {
    t.equal((await me(app, rawSign(access.header, payload))).statusCode, 200, name)
  }
  await assertUnharmed(t, pair)
})

t.test('an access token really expires after ACCESS_TOKEN_TTL; refreshing gives a working one', async (t) => {
  // A minute, moved past on the test clock: a one-second token could expire on a loaded machine
  // before the first check.
  const short = await buildTestApp(t, { env: { ACCESS_TOKEN_TTL: '60', CLOCK_TOLERANCE: '0' } })
  const pair = await registerUser(short.app)
  t.equal(pair.expires_in, 60)
  const { payload } = decodeJwt(pair.access_token)
  t.equal(payload.exp - payload.iat, 60, 'exp is iat + ACCESS_TOKEN_TTL')
  t.equal((await me(short.app, pair.access_token)).statusCode, 200, 'valid at first')

  short.clock.advance(61)
  const expired = await me(short.app, pair.access_token)
  t.equal(expired.statusCode, 401, 'expired')
  t.equal(expired.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.match(expired.json(), errorShape(401))
  const verify = await short.app.inject({ method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(pair.access_token) })
  t.equal(verify.statusCode, 401, '/verify agrees')

  const renewed = await refresh(short.app, pair.refresh_token)
  t.equal(renewed.statusCode, 200, 'the refresh token outlives the access token')
  t.equal((await me(short.app, renewed.json().access_token)).statusCode, 200, 'and the new access token works')
})

t.test('an unknown or missing kid, and jku/jwk/x5u/x5c headers, are rejected', async (t) => {
  const { pair, access } = await genuine()
  const { kid, ...noKid } = access.header
  const attacker = generateKeyPairSync('ed25519')
  const attackerJwk = attacker.publicKey.export({ format: 'jwk' })
  const cases: Record<string, string> = {
    'unknown kid, our key': rawSign({ ...access.header, kid: 'unknown-kid' }, access.payload),
    'missing kid, our key': rawSign(noKid, access.payload),
    'kid of another type': rawSign({ ...access.header, kid: 12345 }, access.payload),
    'our kid, attacker key': rawSign(access.header, access.payload, attacker.privateKey),
    'embedded jwk with our kid': rawSign({ ...access.header, jwk: attackerJwk }, access.payload, attacker.privateKey),
    'embedded jwk, no kid': rawSign({ ...noKid, jwk: attackerJwk }, access.payload, attacker.privateKey),
    'jku to an attacker JWKS': rawSign({ ...noKid, kid: 'evil', jku: 'https://evil.example/jwks.json' }, access.payload, attacker.privateKey),
    'x5u to an attacker certificate': rawSign({ ...noKid, x5u: 'https://evil.example/cert.pem' }, access.payload, attacker.privateKey),
    'x5c with an attacker key': rawSign({ ...noKid, x5c: ['MIIB'] }, access.payload, attacker.privateKey)
  }
  t.ok(kid, 'genuine tokens carry a kid')
  for (const [name, token] of Object.entries(cases)) await assertRejectedAsAccess(t, token, name)
  await assertUnharmed(t, pair)
})

t.test('an unknown crit header is rejected', async (t) => {
  const { pair, access } = await genuine()
  await assertRejectedAsAccess(t, rawSign({ ...access.header, crit: ['x-must-understand'], 'x-must-understand': true }, access.payload), 'crit: unknown extension')
  await assertRejectedAsAccess(t, rawSign({ ...access.header, crit: [] }, access.payload), 'crit: empty')
  await assertRejectedAsAccess(t, rawSign({ ...access.header, crit: ['exp'] }, access.payload), 'crit: a standard name')
  await assertUnharmed(t, pair)
})

t.test('a validly signed token for a session that does not exist is rejected', async (t) => {
  const { pair, access, refreshToken } = await genuine()
  const { sid: _sid, ...noSid } = access.payload
  const cases: Record<string, Json> = {
    'sid of a session that never existed': { ...access.payload, sid: randomUUID() },
    'sid not a UUID': { ...access.payload, sid: 'not-a-uuid' },
    'sid missing': noSid,
    'sub not a UUID': { ...access.payload, sub: "1' OR '1'='1" }
  }
  for (const [name, payload] of Object.entries(cases)) await assertRejectedAsAccess(t, rawSign(access.header, payload), name)

  const ghostRefresh = rawSign(refreshToken.header, { ...refreshToken.payload, sid: randomUUID() })
  const res = await refresh(app, ghostRefresh)
  t.equal(res.statusCode, 401, 'a refresh token of a session that never existed')
  t.match(res.json(), errorShape(401))
  await assertUnharmed(t, pair)
})

t.test("a validly signed token whose sub and sid do not belong together is rejected", async (t) => {
  const { pair, access, refreshToken } = await genuine()
  const other = await registerUser(app)
  const otherSid = decodeJwt(other.access_token).payload.sid
  const cases: Record<string, Json> = {
    "sid of another user's session": { ...access.payload, sid: otherSid },
    'sub of a user that does not exist': { ...access.payload, sub: randomUUID() }
  }
  for (const [name, payload] of Object.entries(cases)) await assertRejectedAsAccess(t, rawSign(access.header, payload), name)
  const foreign = rawSign(refreshToken.header, { ...refreshToken.payload, sid: decodeJwt(other.refresh_token).payload.sid })
  t.equal((await refresh(app, foreign)).statusCode, 401, "a refresh token naming another user's session")
  t.equal(await countSessions(app, pair.user.id), 1, 'no session was deleted')
  t.equal(await countSessions(app, other.user.id), 1, "nor the other user's")

  // Only the service's own key can mint such tokens, so no client can do this; but the liveness
  // cache then remembers the *session* as dead (src/plugins/liveness.ts caches a user mismatch
  // under the session id alone), and the genuine owners' tokens stop working on this instance.
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'the genuine access token still works')
  t.equal((await me(app, other.access_token)).statusCode, 200, "the other user's access token still works")
})

t.test('revocation is by session: re-encoded or re-signed variants of a revoked token are dead too', async (t) => {
  const { pair, access, refreshToken } = await genuine()
  const logout = await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  t.equal(logout.statusCode, 204)
  const reordered = Object.fromEntries(Object.entries(access.payload).reverse())
  const variants: Record<string, string> = {
    'the original': pair.access_token,
    're-signed with a new jti': rawSign(access.header, { ...access.payload, jti: randomUUID() }),
    're-signed with claims reordered': rawSign(access.header, reordered),
    're-signed with a later exp': rawSign(access.header, { ...access.payload, exp: access.payload.exp + 600 })
  }
  for (const [name, token] of Object.entries(variants)) await assertRejectedAsAccess(t, token, name)
  const refreshVariants: Record<string, string> = {
    'the original refresh token': pair.refresh_token,
    'refresh token re-signed with a new jti': rawSign(refreshToken.header, { ...refreshToken.payload, jti: 'fresh-jti' }),
    'refresh token with claims reordered': rawSign(refreshToken.header, Object.fromEntries(Object.entries(refreshToken.payload).reverse()))
  }
  for (const [name, token] of Object.entries(refreshVariants)) t.equal((await refresh(app, token)).statusCode, 401, name)
  t.equal(await countSessions(app, pair.user.id), 0, 'and nothing came back')
})
