// The TokenVerifier (src/auth/token-verifier.ts): one verdict for a token whichever path checks
// its signature (the own-signature fast path, or @fastify/jwt for a key that is not the current
// one), and that verdict agrees with full fast-jwt verification under the documented rules.
// Tokens are signed with the service's real key, so they reach the claim rules: the property
// covers headers and claims our signer never produces. The clock is fixed, so no boundary moves.
import { randomUUID, sign } from 'node:crypto'
import fc from 'fast-check'
import Fastify from 'fastify'
import { createVerifier } from 'fast-jwt'
import t, { type Test } from 'tap'
import { TOKEN_TYP, TokenRejectedError, canonicalUuid, type TokenKind } from '../../src/auth/claims.js'
import { generateSigningKeyPem, loadKeyRing, type KeyMaterial, type KeyRing } from '../../src/auth/keys.js'
import { ownSignatureCheck } from '../../src/auth/own-signature.js'
import { createTokenIssuer } from '../../src/auth/token-issuer.js'
import { createTokenVerifier, type TokenVerifier } from '../../src/auth/token-verifier.js'
import { loadConfig } from '../../src/config.js'
import { signatureVerifiers } from '../../src/plugins/auth.js'

const privateKeyPem = generateSigningKeyPem('EdDSA')
const settings = loadConfig({ NODE_ENV: 'test' }).tokens
const ringOptions = { dataDir: '/nonexistent', isProduction: false }
const NOW_MS = Date.UTC(2026, 11, 1, 12, 0, 0)
const nowS = NOW_MS / 1000

/** A verifier over `material`, with @fastify/jwt registered on a bare app for the full path. */
async function verifierFor(t: Test, material: KeyMaterial, nowMs = () => NOW_MS, cacheSize = 0): Promise<{ keys: KeyRing, verifier: TokenVerifier }> {
  const app = Fastify()
  t.teardown(() => app.close())
  const keys = await loadKeyRing(material, ringOptions)
  const byKid = await signatureVerifiers(app, keys)
  const verifier = createTokenVerifier({ keys, settings, now: () => new Date(nowMs()), cacheSize, signatureVerifier: (kid) => byKid.get(kid) })
  return { keys, verifier }
}

const { keys, verifier: fastPath } = await verifierFor(t, { algorithm: 'EdDSA', privateKey: privateKeyPem })
// The service key as a retired key of another ring: its tokens can only be fully verified there.
const { verifier: fullPath } = await verifierFor(t, { algorithm: 'EdDSA', privateKey: generateSigningKeyPem('EdDSA'), verifyKeys: privateKeyPem })
const issuer = createTokenIssuer(keys, settings)

const REQUIRED: Record<TokenKind, string[]> = {
  access: ['iss', 'aud', 'sub', 'sid', 'client_id', 'jti', 'iat', 'exp'],
  refresh: ['iss', 'aud', 'sub', 'sid', 'jti', 'iat', 'exp'],
  machine: ['iss', 'aud', 'sub', 'client_id', 'scope', 'jti', 'iat', 'exp']
}

/** The oracle: fast-jwt with every documented rule, plus the rules it has no option for. */
function oracle(kind: TokenKind): (token: string) => boolean {
  const verify = createVerifier({
    key: keys.verificationKey(keys.signingKid)!,
    algorithms: ['EdDSA'],
    allowedIss: settings.issuer,
    allowedAud: settings.audience,
    checkTyp: TOKEN_TYP[kind],
    requiredClaims: REQUIRED[kind],
    clockTolerance: settings.clockTolerance * 1000,
    maxAge: ((kind === 'access' ? settings.accessTtl : settings.refreshTtl) + settings.clockTolerance) * 1000,
    clockTimestamp: NOW_MS,
    complete: true
  })
  return (token) => {
    try {
      const { header, payload } = verify(token) as { header: Record<string, unknown>, payload: Record<string, unknown> }
      return header.kid === keys.signingKid && header.crit === undefined &&
        canonicalUuid(payload.sub) !== undefined && canonicalUuid(payload.sid) !== undefined &&
        typeof payload.iat === 'number' && payload.iat * 1000 <= NOW_MS + settings.clockTolerance * 1000 &&
        typeof payload.jti === 'string' && payload.jti !== '' &&
        (kind === 'refresh' || (typeof payload.client_id === 'string' && payload.client_id !== ''))
    } catch {
      return false
    }
  }
}

function accepts(verifier: TokenVerifier, token: string, kind: TokenKind): boolean {
  try {
    verifier.verify(token, kind)
    return true
  } catch (err) {
    if (!(err instanceof TokenRejectedError)) throw err
    return false
  }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A JWS over exactly these header and payload, signed with the service's own key. */
function signWithServiceKey(header: object, payload: object, pem = privateKeyPem): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${sign(null, Buffer.from(input), pem).toString('base64url')}`
}

const absent = undefined
/** Mostly the value a genuine token has, else one of the variants: most draws are one defect away from valid. */
const mostly = <T>(genuine: T, ...variants: unknown[]) =>
  fc.oneof({ arbitrary: fc.constant<unknown>(genuine), weight: 6 }, { arbitrary: fc.constantFrom(...variants), weight: 1 })
const claimArbitraries = {
  iss: mostly(settings.issuer, 'someone-else', 5, [settings.issuer], absent),
  aud: mostly(settings.audience, [settings.audience], ['other', settings.audience], [settings.audience, 5], [], 'other', 5, absent),
  sub: mostly(randomUUID(), randomUUID().toUpperCase(), 'not-a-uuid', 7, absent),
  sid: mostly(randomUUID(), 'not-a-uuid', absent),
  jti: mostly('a-jti', 5, '', absent),
  client_id: mostly(settings.clientId, 5, absent),
  iat: mostly(-60, 2, 8, -(settings.accessTtl + 8), -(settings.refreshTtl + 2), -(settings.refreshTtl + 8), 'x', null, absent),
  exp: mostly(600, -2, -8, 'x', null, absent),
  nbf: mostly(absent, -60, 2, 8, 'x', null)
}
const headerArbitrary = (typ: string) => fc.record({
  alg: mostly('EdDSA', 'eddsa', 'ES256', 'HS256', 'none', absent),
  typ: mostly(typ, typ.toUpperCase(), `application/${typ}`, TOKEN_TYP.access, TOKEN_TYP.refresh, 'JWT', 42, absent),
  kid: mostly(keys.signingKid, 'another-kid', 7, absent),
  crit: mostly(absent, null, 0, '', false, [], ['b64'], 'exp', true)
})

for (const kind of ['refresh', 'access'] as const) {
  t.test(`${kind} tokens signed with the service key: both paths agree with full verification`, async (t) => {
    const expectedOf = oracle(kind)
    let accepted = 0
    let rejected = 0
    fc.assert(
      fc.property(headerArbitrary(TOKEN_TYP[kind]), fc.record(claimArbitraries), (header, claims) => {
        const payload = Object.fromEntries(
          Object.entries(claims).map(([name, value]) =>
            ['iat', 'exp', 'nbf'].includes(name) && typeof value === 'number' ? [name, nowS + value] : [name, value]
          )
        )
        const token = signWithServiceKey(header, payload)
        const expected = expectedOf(token)
        if (expected) accepted++
        else rejected++
        return accepts(fastPath, token, kind) === expected && accepts(fullPath, token, kind) === expected
      }),
      { numRuns: 3_000 }
    )
    t.ok(accepted > 100 && rejected > 100, `both outcomes compared: ${accepted} valid, ${rejected} invalid`)
  })
}

/** The machine token oracle: fast-jwt with the machine rules, plus sub = client_id, no sid. */
function machineOracle(): (token: string) => boolean {
  const verify = createVerifier({
    key: keys.verificationKey(keys.signingKid)!,
    algorithms: ['EdDSA'],
    allowedIss: settings.issuer,
    allowedAud: settings.issuer,
    checkTyp: TOKEN_TYP.machine,
    requiredClaims: REQUIRED.machine,
    clockTolerance: settings.clockTolerance * 1000,
    maxAge: (settings.accessTtl + settings.clockTolerance) * 1000,
    clockTimestamp: NOW_MS,
    complete: true
  })
  return (token) => {
    try {
      const { header, payload } = verify(token) as { header: Record<string, unknown>, payload: Record<string, unknown> }
      return header.kid === keys.signingKid && header.crit === undefined &&
        typeof payload.client_id === 'string' && payload.client_id !== '' && payload.sub === payload.client_id &&
        !('sid' in payload) && typeof payload.scope === 'string' &&
        typeof payload.iat === 'number' && payload.iat * 1000 <= NOW_MS + settings.clockTolerance * 1000 &&
        typeof payload.jti === 'string' && payload.jti !== ''
    } catch {
      return false
    }
  }
}

t.test('machine tokens signed with the service key: both paths agree with full verification', async (t) => {
  const expectedOf = machineOracle()
  const machineClaims = {
    ...claimArbitraries,
    // A machine token is for this service: its audience is the issuer, never the users' APIs.
    aud: mostly(settings.issuer, [settings.issuer], [settings.audience, settings.issuer], settings.audience, [], 5, absent),
    sub: mostly('billing', 'other', '', 5, absent),
    client_id: mostly('billing', 'other', '', 5, absent),
    scope: mostly('introspect sessions:admin', '', 5, null, absent),
    sid: mostly(absent, randomUUID(), null)
  }
  let accepted = 0
  let rejected = 0
  fc.assert(
    fc.property(headerArbitrary(TOKEN_TYP.machine), fc.record(machineClaims), (header, claims) => {
      const payload = Object.fromEntries(
        Object.entries(claims)
          .filter(([, value]) => value !== undefined)
          .map(([name, value]) => (['iat', 'exp', 'nbf'].includes(name) && typeof value === 'number' ? [name, nowS + value] : [name, value]))
      )
      const token = signWithServiceKey(header, payload)
      const expected = expectedOf(token)
      if (expected) accepted++
      else rejected++
      return accepts(fastPath, token, 'machine') === expected && accepts(fullPath, token, 'machine') === expected &&
        !accepts(fastPath, token, 'access') // never a user's access token, whatever it holds
    }),
    { numRuns: 3_000 }
  )
  t.ok(accepted > 100 && rejected > 100, `both outcomes compared: ${accepted} valid, ${rejected} invalid`)
})

t.test('genuine tokens take the fast path, of their own kind only; defects are rejected', async (t) => {
  const now = new Date(NOW_MS)
  const later = new Date(NOW_MS + 3_600_000)
  const refresh = issuer.issueRefreshToken(randomUUID(), randomUUID(), issuer.newRefreshJti(), now, later)
  const access = issuer.issueAccessToken(randomUUID(), randomUUID(), later, now).token
  const signedByCurrentKey = ownSignatureCheck(keys)!
  t.ok(signedByCurrentKey(refresh) && signedByCurrentKey(access), 'our own signatures are recognised')
  t.ok(accepts(fastPath, refresh, 'refresh') && accepts(fastPath, access, 'access'))
  t.notOk(accepts(fastPath, access, 'refresh'), 'an access token is not a refresh token')
  t.notOk(accepts(fastPath, refresh, 'access'), 'nor the other way round')

  const [h, p, s] = refresh.split('.')
  const flipped = s[0] === 'A' ? `B${s.slice(1)}` : `A${s.slice(1)}`
  for (const [name, variant] of Object.entries({
    'another signature': `${h}.${p}.${flipped}`,
    'signature cut short': `${h}.${p}.${s.slice(0, -2)}`,
    'no signature': `${h}.${p}.`,
    'a fourth segment': `${refresh}.${s}`,
    'payload swapped': `${h}.${b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: randomUUID() })}.${s}`,
    'not a JWT': 'garbage'
  })) {
    t.notOk(signedByCurrentKey(variant), `${name}: not recognised`)
    t.notOk(accepts(fastPath, variant, 'refresh'), `${name}: rejected`)
  }

  const byOtherKey = signWithServiceKey(JSON.parse(Buffer.from(h, 'base64url').toString()), JSON.parse(Buffer.from(p, 'base64url').toString()), generateSigningKeyPem('EdDSA'))
  t.notOk(signedByCurrentKey(byOtherKey), 'a valid Ed25519 signature by another key is not ours')
  t.notOk(accepts(fastPath, byOtherKey, 'refresh'), 'and full verification rejects it under our kid')
})

t.test('a retired key still verifies its tokens, through @fastify/jwt', async (t) => {
  const retiredPem = generateSigningKeyPem('EdDSA')
  const retired = createTokenIssuer(await loadKeyRing({ algorithm: 'EdDSA', privateKey: retiredPem }, ringOptions), settings)
  const old = retired.issueRefreshToken(randomUUID(), randomUUID(), 'jti', new Date(NOW_MS), new Date(NOW_MS + 3_600_000))
  const { keys: rotatedKeys, verifier } = await verifierFor(t, { algorithm: 'EdDSA', privateKey: privateKeyPem, verifyKeys: retiredPem })
  t.notOk(ownSignatureCheck(rotatedKeys)!(old), 'not signed by the current key')
  t.equal(verifier.verify(old, 'refresh').jti, 'jti', 'but verified with the retired public key')
})

t.test('ES256 and HS256 have no fast path and verify through @fastify/jwt', async (t) => {
  for (const material of [
    { algorithm: 'ES256', privateKey: generateSigningKeyPem('ES256') },
    { algorithm: 'HS256', secret: 'x'.repeat(32) }
  ] as const) {
    const { keys: ring, verifier } = await verifierFor(t, material)
    t.equal(ownSignatureCheck(ring), undefined, `${material.algorithm}: no fast path`)
    const token = createTokenIssuer(ring, settings).issueAccessToken(randomUUID(), randomUUID(), new Date(NOW_MS + 3_600_000), new Date(NOW_MS)).token
    t.ok(accepts(verifier, token, 'access'), `${material.algorithm}: genuine token accepted`)
    t.notOk(accepts(fastPath, token, 'access'), `${material.algorithm}: unknown to the EdDSA ring`)
  }
})

t.test('time is the injected clock: a token expires when the clock passes exp, cached or not', async (t) => {
  let clockMs = NOW_MS
  const { verifier } = await verifierFor(t, { algorithm: 'EdDSA', privateKey: privateKeyPem }, () => clockMs, 100)
  const token = issuer.issueAccessToken(randomUUID(), randomUUID(), new Date(NOW_MS + 3_600_000), new Date(NOW_MS)).token
  const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp * 1000
  t.ok(accepts(verifier, token, 'access'))
  t.equal(verifier.cacheSize, 1, 'remembered')
  clockMs = exp + settings.clockTolerance * 1000
  t.ok(accepts(verifier, token, 'access'), 'still valid at exp plus the tolerance')
  clockMs += 1
  t.notOk(accepts(verifier, token, 'access'), 'expired a millisecond later, though cached')
  t.equal(verifier.cacheSize, 0, 'and dropped from the cache')
  clockMs = NOW_MS - (settings.clockTolerance + 1) * 1000
  t.notOk(accepts(verifier, token, 'access'), 'issued in the future of a clock set back')
})

t.test('sub and sid come back canonical (lower case), whatever case the token wrote them in', async (t) => {
  const sid = randomUUID()
  const sub = randomUUID()
  const token = signWithServiceKey(
    { alg: 'EdDSA', typ: TOKEN_TYP.access, kid: keys.signingKid },
    { iss: settings.issuer, aud: settings.audience, sub: sub.toUpperCase(), sid: sid.toUpperCase(), client_id: 'x', jti: 'j', iat: nowS, exp: nowS + 60 }
  )
  const claims = fastPath.verify(token, 'access')
  t.equal(claims.sid, sid)
  t.equal(claims.sub, sub)
})
