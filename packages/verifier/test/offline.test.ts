// Offline verification against the real auth service: its metadata, its JWKS, its tokens. Each
// refusal is a real token of the service changed in one respect and signed again with the service's
// own key (so only the rule under test is broken), or signed with a key the service does not have.
import { createPrivateKey, sign } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import t, { type Test } from 'tap'
import { createVerifier, type Verifier } from '../src/index.js'
import {
  hasTransmitter, machineToken, newClient, publicKeyPem, register, rejection, signingKeyPem, standInTransmitter, startAuth, startFront, verifierOptions, type Auth
} from './support.js'

/** A JWS signed by hand (node:crypto), so any header at all can be written, `crit` included. */
function resign(token: string, pem: string, header: Record<string, unknown> = {}, claims: Record<string, unknown> = {}): string {
  const protectedHeader: Record<string, unknown> = { ...decodeProtectedHeader(token), ...header }
  const payload: Record<string, unknown> = { ...decodeJwt(token), ...claims }
  for (const [name, value] of Object.entries(header)) if (value === undefined) delete protectedHeader[name]
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete payload[name]
  const input = `${Buffer.from(JSON.stringify(protectedHeader)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  const key = createPrivateKey(pem)
  const signature = key.asymmetricKeyType === 'ed25519'
    ? sign(null, Buffer.from(input), key)
    : sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}

async function verifierFor(t: Test, auth: Auth, extra: Record<string, unknown> = {}): Promise<Verifier> {
  const standIn = (await hasTransmitter(auth)) ? undefined : standInTransmitter(auth)
  const verifier = createVerifier(verifierOptions(auth, { ...(standIn ? { fetch: standIn.fetch } : {}), ...extra }))
  t.teardown(() => verifier.close())
  await verifier.ready().catch((error) => {
    throw new Error(`${error.message}\n--- the service wrote:\n${auth.server.output()}`)
  })
  return verifier
}

t.test('EdDSA: the service\'s tokens are accepted; every broken rule is refused', async (t) => {
  const auth = await startAuth(t)
  const verifier = await verifierFor(t, auth)
  const session = await register(auth)

  const claims = await verifier.verify(session.accessToken)
  t.equal(claims.sub, session.userId)
  t.equal(claims.iss, auth.url)
  t.type(claims.sid, 'string')
  t.type(claims.client_id, 'string')
  t.equal(decodeProtectedHeader(session.accessToken).alg, 'EdDSA')

  const now = Math.floor(Date.now() / 1000)
  const pem = auth.privateKeyPem
  const cases: Array<[string, string]> = [
    ['wrong iss', resign(session.accessToken, pem, {}, { iss: 'http://127.0.0.1:1' })],
    ['issuer with a trailing slash', resign(session.accessToken, pem, {}, { iss: `${auth.url}/` })],
    ['wrong aud', resign(session.accessToken, pem, {}, { aud: 'another-api' })],
    ['typ JWT', resign(session.accessToken, pem, { typ: 'JWT' })],
    ['typ refresh+jwt', resign(session.accessToken, pem, { typ: 'refresh+jwt' })],
    ['no typ', resign(session.accessToken, pem, { typ: undefined })],
    ['expired', resign(session.accessToken, pem, {}, { iat: now - 600, exp: now - 300 })],
    ['older than maxTokenAgeSec', resign(session.accessToken, pem, {}, { iat: now - 7200, exp: now + 300 })],
    ['issued in the future', resign(session.accessToken, pem, {}, { iat: now + 600, exp: now + 1200 })],
    ['not yet valid (nbf)', resign(session.accessToken, pem, {}, { nbf: now + 600 })],
    ['no sid', resign(session.accessToken, pem, {}, { sid: undefined })],
    ['no client_id', resign(session.accessToken, pem, {}, { client_id: undefined })],
    ['no jti', resign(session.accessToken, pem, {}, { jti: undefined })],
    ['no sub', resign(session.accessToken, pem, {}, { sub: undefined })],
    ['empty sid', resign(session.accessToken, pem, {}, { sid: '' })],
    ['no exp', resign(session.accessToken, pem, {}, { exp: undefined })],
    ['unknown crit', resign(session.accessToken, pem, { crit: ['x-unknown'], 'x-unknown': 1 })],
    ['forged: another key, the service\'s kid', resign(session.accessToken, signingKeyPem('EdDSA'))],
    ['tampered payload', (() => {
      const [h, , s] = session.accessToken.split('.')
      const payload = Buffer.from(JSON.stringify({ ...decodeJwt(session.accessToken), sub: '00000000-0000-4000-8000-000000000000' })).toString('base64url')
      return `${h}.${payload}.${s}`
    })()],
    ['alg none', (() => {
      const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')
      const payload = session.accessToken.split('.')[1]
      return `${header}.${payload}.`
    })()],
    ['garbage', 'not-a-jwt'],
    ['empty', '']
  ]
  for (const [name, pending] of cases) {
    const error = await rejection(verifier.verify(pending))
    t.equal(error.code, 'invalid_token', `${name}: ${error.message}`)
    t.equal(error.statusCode, 401, name)
  }

  // A machine token of the same issuer is no user's token: its aud is the issuer, and it has no sid.
  const machine = await machineToken(auth)
  t.equal((await rejection(verifier.verify(machine))).code, 'invalid_token', 'a machine token is refused')

  // The control: the same re-signing with nothing changed is accepted.
  t.ok(await verifier.verify(resign(session.accessToken, pem)), 're-signed unchanged: accepted')
})

t.test('an unknown kid refetches the JWKS: the service restarted with a new key, the old one retired', async (t) => {
  const oldKey = signingKeyPem('EdDSA')
  // One issuer URL across the restart: a front whose target is the instance of the moment.
  const front = await startFront(t)
  const client = newClient()
  const before = await startAuth(t, { privateKeyPem: oldKey, publicUrl: front.url, client })
  front.target = Number(new URL(before.server.url).port)
  const verifier = await verifierFor(t, before, { jwksCooldownMs: 0 })
  const old = await register(before)
  t.ok(await verifier.verify(old.accessToken), 'old key: accepted')
  await before.stop()

  const newKey = signingKeyPem('EdDSA')
  const after = await startAuth(t, { privateKeyPem: newKey, verifyKeys: [publicKeyPem(oldKey)], publicUrl: front.url, client })
  front.target = Number(new URL(after.server.url).port)
  const fresh = await register(after)
  t.not(decodeProtectedHeader(fresh.accessToken).kid, decodeProtectedHeader(old.accessToken).kid, 'a new kid')
  t.equal((await verifier.verify(fresh.accessToken)).sub, fresh.userId, 'new key: accepted after the refetch')
  t.ok(await verifier.verify(old.accessToken), 'the retired key still verifies')
})

t.test('ES256: the service signing with P-256', async (t) => {
  const auth = await startAuth(t, { algorithm: 'ES256' })
  const verifier = await verifierFor(t, auth)
  const session = await register(auth)
  t.equal(decodeProtectedHeader(session.accessToken).alg, 'ES256')
  t.equal((await verifier.verify(session.accessToken)).sub, session.userId)
  const forged = resign(session.accessToken, signingKeyPem('ES256'))
  t.equal((await rejection(verifier.verify(forged))).code, 'invalid_token', 'forged ES256: refused')
  const expired = resign(session.accessToken, auth.privateKeyPem, {}, { exp: Math.floor(Date.now() / 1000) - 60 })
  t.equal((await rejection(verifier.verify(expired))).code, 'invalid_token', 'expired ES256: refused')
})

t.test('algorithms narrowed to EdDSA: an ES256 issuer\'s tokens are refused', async (t) => {
  const auth = await startAuth(t, { algorithm: 'ES256' })
  const verifier = await verifierFor(t, auth, { algorithms: ['EdDSA'] })
  const session = await register(auth)
  t.equal((await rejection(verifier.verify(session.accessToken))).code, 'invalid_token')
})
