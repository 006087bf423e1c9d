// The fast path for tokens of the current key (services/own-signature.ts: sign again instead of
// verify, then the claim rules in tokens.ts) must accept exactly what full fast-jwt verification
// accepts, for refresh and access tokens alike.
// Tokens here are signed with the service's real key, so they reach the claim rules: the
// differential property covers headers and claims our signer would never produce.
import { randomUUID, sign } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { createDecoder, createVerifier } from 'fast-jwt'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { generateSigningKeyPem, loadKeyRing } from '../../src/services/keys.js'
import { ownSignatureCheck } from '../../src/services/own-signature.js'
import {
  ACCESS_TOKEN_TYP,
  REFRESH_TOKEN_TYP,
  createTokenService,
  isUuid,
  issuedInThePast,
  verifierOptions
} from '../../src/services/tokens.js'

const dataDir = mkdtempSync(path.join(tmpdir(), 'own-signature-'))
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))

const privateKeyPem = generateSigningKeyPem('EdDSA')
const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, JWT_PRIVATE_KEY: privateKeyPem })
const settings = config.tokens
const keys = await loadKeyRing({ algorithm: 'EdDSA', privateKey: privateKeyPem }, { dataDir, isProduction: false })
const tokens = createTokenService(keys, settings)
const signedByCurrentKey = ownSignatureCheck(keys)!

const decodeHeader = createDecoder({ complete: true })

/**
 * Full verification, as every token went through before the fast path: the key by kid, fast-jwt
 * with the service's rules, then the checks the service adds (plugins/auth.ts `trusted`, and
 * verifyRefreshToken).
 */
function fullVerifier(typ: string): (token: string) => boolean {
  const verify = createVerifier({ ...verifierOptions(keys, settings, typ), key: keys.verificationKey(keys.signingKid)! })
  return (token) => {
    try {
      if (decodeHeader(token).header.kid !== keys.signingKid) return false
      return serviceChecks(verify(token) as Claims, typ)
    } catch {
      return false
    }
  }
}

type Claims = Record<string, unknown> & { sid: string, sub: string, iat: number }
const serviceChecks = (claims: Claims, typ: string) =>
  isUuid(claims.sid) && isUuid(claims.sub) && issuedInThePast(claims.iat, new Date(), settings) &&
  (typ === ACCESS_TOKEN_TYP || typeof claims.jti === 'string')

/** The service's check, fast path first. */
async function serviceAccepts(token: string, typ: string): Promise<boolean> {
  try {
    if (typ === REFRESH_TOKEN_TYP) {
      await tokens.verifyRefreshToken(token)
      return true
    }
    const own = tokens.ownAccessTokenClaims(token)
    return own ? serviceChecks(own as unknown as Claims, typ) : fullVerifier(typ)(token)
  } catch {
    return false
  }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A JWS over exactly these header and payload, signed with the service's own key. */
function signWithServiceKey(header: object, payload: object, pem = privateKeyPem): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${sign(null, Buffer.from(input), pem).toString('base64url')}`
}

const nowS = () => Math.floor(Date.now() / 1000)
// Offsets stay 2 s or more away from every boundary (tolerance 5 s), so a second ticking over
// between the two checks cannot make them disagree.
const absent = undefined
/** Mostly the value a genuine token has, else one of the variants: most draws are one defect away from valid. */
const mostly = <T>(genuine: T, ...variants: unknown[]) =>
  fc.oneof({ arbitrary: fc.constant<unknown>(genuine), weight: 6 }, { arbitrary: fc.constantFrom(...variants), weight: 1 })
const claimArbitraries = {
  iss: mostly(settings.issuer, 'someone-else', 5, [settings.issuer], absent),
  aud: mostly(settings.audience, [settings.audience], ['other', settings.audience], [settings.audience, 5], [], 'other', 5, absent),
  sub: mostly(randomUUID(), 'not-a-uuid', 7, absent),
  sid: mostly(randomUUID(), 'not-a-uuid', absent),
  jti: mostly('a-jti', 5, absent),
  client_id: mostly(settings.clientId, 5, absent),
  iat: mostly(-60, 2, 8, -(settings.accessTtl + 8), -(settings.refreshTtl + 2), -(settings.refreshTtl + 8), 'x', null, absent),
  exp: mostly(600, -2, -8, 'x', null, absent),
  nbf: mostly(absent, -60, 2, 8, 'x', null)
}
const headerArbitrary = (typ: string) => fc.record({
  alg: mostly('EdDSA', 'eddsa', 'ES256', 'HS256', 'none', absent),
  typ: mostly(typ, typ.toUpperCase(), `application/${typ}`, ACCESS_TOKEN_TYP, REFRESH_TOKEN_TYP, 'JWT', 42, absent),
  kid: mostly(keys.signingKid, 'another-kid', 7, absent),
  crit: mostly(absent, null, 0, '', false, [], ['b64'], 'exp', true)
})

for (const typ of [REFRESH_TOKEN_TYP, ACCESS_TOKEN_TYP]) {
  t.test(`${typ}, signed with the service key: the fast path accepts exactly what full verification accepts`, async (t) => {
    const fullyVerified = fullVerifier(typ)
    let accepted = 0
    let rejected = 0
    await fc.assert(
      fc.asyncProperty(headerArbitrary(typ), fc.record(claimArbitraries), async (header, claims) => {
        const now = nowS()
        const payload = Object.fromEntries(
          Object.entries(claims).map(([name, value]) =>
            ['iat', 'exp', 'nbf'].includes(name) && typeof value === 'number' ? [name, now + value] : [name, value]
          )
        )
        const token = signWithServiceKey(header, payload)
        const expected = fullyVerified(token)
        if (expected) accepted++
        else rejected++
        return (await serviceAccepts(token, typ)) === expected
      }),
      { numRuns: 3_000 }
    )
    t.ok(accepted > 100 && rejected > 100, `both outcomes compared: ${accepted} valid, ${rejected} invalid`)
  })
}

t.test('genuine refresh tokens take the fast path; others fall back to full verification', async (t) => {
  const now = new Date()
  const genuine = tokens.issueRefreshToken(randomUUID(), randomUUID(), tokens.newRefreshJti(), now, new Date(now.getTime() + 3_600_000))
  t.ok(signedByCurrentKey(genuine), 'our own signature is recognised')
  t.ok(await serviceAccepts(genuine, REFRESH_TOKEN_TYP))

  const access = tokens.issueAccessToken(randomUUID(), randomUUID(), new Date(now.getTime() + 3_600_000), now).token
  t.ok(signedByCurrentKey(access), 'access tokens too')
  t.ok(await serviceAccepts(access, ACCESS_TOKEN_TYP))
  t.notOk(await serviceAccepts(access, REFRESH_TOKEN_TYP), 'but not where a refresh token is expected')
  t.notOk(await serviceAccepts(genuine, ACCESS_TOKEN_TYP), 'nor a refresh token where an access token is')

  const [h, p, s] = genuine.split('.')
  const flipped = s[0] === 'A' ? `B${s.slice(1)}` : `A${s.slice(1)}`
  for (const [name, variant] of Object.entries({
    'another signature': `${h}.${p}.${flipped}`,
    'signature cut short': `${h}.${p}.${s.slice(0, -2)}`,
    'no signature': `${h}.${p}.`,
    'a fourth segment': `${genuine}.${s}`,
    'payload swapped': `${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: randomUUID() })}.${s}`
  })) {
    t.notOk(signedByCurrentKey(variant), `${name}: not recognised`)
    t.notOk(await serviceAccepts(variant, REFRESH_TOKEN_TYP), `${name}: rejected`)
  }

  const otherPem = generateSigningKeyPem('EdDSA')
  const header = JSON.parse(Buffer.from(h, 'base64url').toString())
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString())
  const byOtherKey = signWithServiceKey(header, payload, otherPem)
  t.notOk(signedByCurrentKey(byOtherKey), 'a valid Ed25519 signature by another key is not ours')
  t.notOk(await serviceAccepts(byOtherKey, REFRESH_TOKEN_TYP), 'and full verification rejects it under our kid')
})

t.test('a retired key still verifies its tokens through full verification', async (t) => {
  const retiredPem = generateSigningKeyPem('EdDSA')
  const retiredKeys = await loadKeyRing({ algorithm: 'EdDSA', privateKey: retiredPem }, { dataDir, isProduction: false })
  const retiredTokens = createTokenService(retiredKeys, settings)
  const now = new Date()
  const old = retiredTokens.issueRefreshToken(randomUUID(), randomUUID(), 'jti', now, new Date(now.getTime() + 3_600_000))

  const rotated = await loadKeyRing(
    { algorithm: 'EdDSA', privateKey: privateKeyPem, verifyKeys: retiredPem },
    { dataDir, isProduction: false }
  )
  t.notOk(ownSignatureCheck(rotated)!(old), 'not signed by the current key')
  const claims = await createTokenService(rotated, settings).verifyRefreshToken(old)
  t.equal(claims.jti, 'jti', 'but verified with the retired public key')
})

t.test('no fast path where signatures are not deterministic or not asymmetric', async (t) => {
  const es = await loadKeyRing({ algorithm: 'ES256', privateKey: generateSigningKeyPem('ES256') }, { dataDir, isProduction: false })
  t.equal(ownSignatureCheck(es), undefined, 'ES256')
  const hs = await loadKeyRing({ algorithm: 'HS256', secret: 'x'.repeat(32) }, { dataDir, isProduction: false })
  t.equal(ownSignatureCheck(hs), undefined, 'HS256')
})
