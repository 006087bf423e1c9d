// Key rotation. One key signs, retired keys (JWT_VERIFY_KEYS) still verify the tokens
// they signed, every token names its key (`kid`), the JWKS publishes all of them, and an unknown
// kid is a 401.
import { createPublicKey } from 'node:crypto'
import { tmpdir } from 'node:os'
import t from 'tap'
import { loadKeyRing } from '../../src/auth/keys.js'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { createTokenIssuer } from '../../src/auth/token-issuer.js'
import { API_PREFIX, buildTestApp, decodeJwt, me, refresh, registerUser, signWith } from '../helper.js'

const kidOf = async (pem: string) =>
  (await loadKeyRing({ algorithm: 'EdDSA', privateKey: pem }, { dataDir: tmpdir(), isProduction: false })).signingKid
const publicPem = (pem: string) => createPublicKey(pem).export({ format: 'pem', type: 'spki' }).toString()

/** The same token as `token`, as the retired key would have signed it. */
function resign(token: string, pem: string, kid: string): string {
  const { header, payload } = decodeJwt(token)
  return signWith(pem, { ...header, kid }, payload)
}

t.test('a retired key keeps verifying; the new key signs; the JWKS lists both', async (t) => {
  const oldPem = generateSigningKeyPem('EdDSA')
  const oldKid = await kidOf(oldPem)
  const { app, privateKeyPem } = await buildTestApp(t, { env: { JWT_VERIFY_KEYS: publicPem(oldPem) } })
  const newKid = await kidOf(privateKeyPem)
  t.not(oldKid, newKid)

  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  t.same(jwks.keys.map((key: { kid: string }) => key.kid), [newKid, oldKid], 'the signing key first, then the retired one')
  t.ok(jwks.keys.every((key: Record<string, unknown>) => key.d === undefined), 'public members only')

  const pair = await registerUser(app)
  t.equal(decodeJwt(pair.access_token).header.kid, newKid, 'new tokens carry the signing key id')

  // Tokens issued before the rotation were signed by the old key.
  const oldAccess = resign(pair.access_token, oldPem, oldKid)
  const oldRefresh = resign(pair.refresh_token, oldPem, oldKid)
  t.equal((await me(app, oldAccess)).statusCode, 200, 'an access token of the retired key still works')
  const rotated = await refresh(app, oldRefresh)
  t.equal(rotated.statusCode, 200, 'so does a refresh token of the retired key')
  t.equal(decodeJwt(rotated.json().refresh_token).header.kid, newKid, 'and what it gets back is signed by the new key')
})

t.test('unknown kid, a missing kid, or a kid naming another key than the signer: 401', async (t) => {
  const strangerPem = generateSigningKeyPem('EdDSA')
  const { app, privateKeyPem } = await buildTestApp(t)
  const pair = await registerUser(app)
  const ownKid = await kidOf(privateKeyPem)

  const variants = {
    'unknown kid': resign(pair.access_token, strangerPem, await kidOf(strangerPem)),
    'known kid, foreign signature': resign(pair.access_token, strangerPem, ownKid),
    'no kid at all': (() => {
      const { header, payload } = decodeJwt(pair.access_token)
      delete header.kid
      return signWith(privateKeyPem, header, payload)
    })()
  }
  for (const [label, token] of Object.entries(variants)) {
    const res = await me(app, token)
    t.equal(res.statusCode, 401, label)
    t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', label)
  }
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'the genuine token still works')
})

t.test('once the retired key is removed, its tokens stop verifying', async (t) => {
  const oldPem = generateSigningKeyPem('EdDSA')
  const { app } = await buildTestApp(t)
  const pair = await registerUser(app)
  const res = await me(app, resign(pair.access_token, oldPem, await kidOf(oldPem)))
  t.equal(res.statusCode, 401)
})

t.test('ES256 and HS256 work end to end; HS256 publishes no key', async (t) => {
  const configurations: Record<string, string>[] = [
    { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: generateSigningKeyPem('ES256') },
    { JWT_ALGORITHM: 'HS256', JWT_SECRET: 'a-test-secret-that-is-long-enough-0123456789' }
  ]
  for (const env of configurations) {
    const { app } = await buildTestApp(t, { env: { ...env } })
    const pair = await registerUser(app)
    t.equal(decodeJwt(pair.access_token).header.alg, env.JWT_ALGORITHM)
    t.equal((await me(app, pair.access_token)).statusCode, 200, `${env.JWT_ALGORITHM}: /me`)
    const next = await refresh(app, pair.refresh_token)
    t.equal(next.statusCode, 200, `${env.JWT_ALGORITHM}: /refresh`)
    const logout = await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: { authorization: `Bearer ${next.json().access_token}` } })
    t.equal(logout.statusCode, 204)
    const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
    t.equal(jwks.keys.length, env.JWT_ALGORITHM === 'HS256' ? 0 : 1, `${env.JWT_ALGORITHM}: JWKS`)
  }
})

t.test('REFRESH_CHAIN_SECRET keeps refresh chains intact across a signing-key switch', async (t) => {
  const settings = { accessTtl: 900, refreshTtl: 3600, reuseGrace: 10, clockTolerance: 5, issuer: 'i', audience: 'a', clientId: 'c', verifiedCacheSize: 0 }
  const ring = (privateKey: string, chainSecret?: string) =>
    loadKeyRing({ algorithm: 'EdDSA', privateKey, chainSecret }, { dataDir: tmpdir(), isProduction: false })
  const before = generateSigningKeyPem('EdDSA')
  const after = generateSigningKeyPem('EdDSA')
  const secret = 'a chain secret of at least thirty-two bytes'
  const jti = crypto.randomUUID()

  const withSecret = [await ring(before, secret), await ring(after, secret)].map((keys) => createTokenIssuer(keys, settings).nextRefreshJti(jti))
  t.equal(withSecret[0], withSecret[1], 'the same next jti whichever key signs')
  const without = [await ring(before), await ring(after)].map((keys) => createTokenIssuer(keys, settings).nextRefreshJti(jti))
  t.not(without[0], without[1], 'without it the chain follows the signing key')
  await t.rejects(ring(before, 'short'), /REFRESH_CHAIN_SECRET must be at least 32 bytes/)
})
