// The receiver's rules for SETs and the stream's lifecycle, against an issuer written in the test
// (test/fake-issuer.ts), where each SET can be made to break one rule.
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import authVerifier, { createVerifier, type Verifier } from '../src/index.js'
import { CLIENT, CREDENTIAL_CHANGE, fakeIssuer, ISSUER, SESSION_REVOKED, VERIFICATION, type FakeIssuer } from './fake-issuer.js'
import { eventually, quietLogger, rejection } from './support.js'

async function start(t: Test, extra: Record<string, unknown> = {}): Promise<{ issuer: FakeIssuer, verifier: Verifier }> {
  const issuer = (extra.issuer as FakeIssuer | undefined) ?? await fakeIssuer()
  delete extra.issuer
  const verifier = createVerifier({ issuer: ISSUER, audience: 'api', ...CLIENT, fetch: issuer.fetch, logger: quietLogger(), readyTimeoutMs: 5_000, ...extra })
  t.teardown(() => verifier.close())
  await verifier.ready()
  return { issuer, verifier }
}

const refused = (verifier: Verifier, token: string, code: string) =>
  verifier.verify(token).then(() => false, (error) => error.code === code)

t.test('a session-revoked SET: acknowledged, the session refused, other sessions accepted', async (t) => {
  const { issuer, verifier } = await start(t)
  const sid = randomUUID()
  const token = await issuer.accessToken({ sid })
  const other = await issuer.accessToken()
  t.ok(await verifier.verify(token))
  const jti = await issuer.revokeSession(sid)
  await eventually(() => refused(verifier, token, 'token_revoked'), 2_000, 'refused')
  await eventually(() => issuer.seen.acked.includes(jti), 2_000, 'acknowledged with the next poll')
  t.ok(await verifier.verify(other), 'another session: accepted')
  // The same session id in upper case is the same session (UUIDs compare case-insensitively).
  t.equal((await rejection(verifier.verify(await issuer.accessToken({ sid: sid.toUpperCase() })))).code, 'token_revoked')
  t.equal(verifier.status.revokedSessions, 1)
})

t.test('SETs that break a rule are reported in setErrs and change nothing', async (t) => {
  const { issuer, verifier } = await start(t)
  const stranger = await issuer.newKey('k1') // the issuer's kid, another key
  const cases: Array<[string, string, Parameters<FakeIssuer['deliver']>[1]]> = [
    ['typ JWT', 'invalid_request', { header: { typ: 'JWT' } }],
    ['another audience', 'invalid_audience', { claims: { aud: 'someone-else' } }],
    ['another issuer', 'invalid_issuer', { claims: { iss: 'https://other.test' } }],
    ['a forged signature', 'invalid_request', { key: stranger }]
  ]
  for (const [name, err, options] of cases) {
    const sid = randomUUID()
    const token = await issuer.accessToken({ sid })
    const jti = await issuer.deliver({ [SESSION_REVOKED]: { event_timestamp: Math.floor(Date.now() / 1000) } }, {
      subId: { format: 'complex', session: { format: 'opaque', id: sid } },
      ...options
    })
    await eventually(() => jti in issuer.seen.errors, 2_000, `${name}: reported`)
    t.equal(issuer.seen.errors[jti].err, err, `${name}: ${err}`)
    t.ok(await verifier.verify(token), `${name}: the session is not revoked by it`)
  }
  t.equal(verifier.status.revokedSessions, 0)
})

t.test('credential-change, verification and unknown events are acknowledged and change nothing', async (t) => {
  const { issuer, verifier } = await start(t)
  const sid = randomUUID()
  const sub = randomUUID()
  const token = await issuer.accessToken({ sid, sub })
  const jtis = [
    await issuer.deliver({ [CREDENTIAL_CHANGE]: { credential_type: 'password', change_type: 'update', event_timestamp: 1 } }, { subId: { format: 'iss_sub', iss: ISSUER, sub } }),
    await issuer.deliver({ [VERIFICATION]: { state: 'abc' } }, { subId: { format: 'opaque', id: 's1' } }),
    await issuer.deliver({ 'https://example.test/unknown-event': {} })
  ]
  await eventually(() => jtis.every((jti) => issuer.seen.acked.includes(jti)), 2_000, 'all acknowledged')
  t.ok(await verifier.verify(token))
  t.equal(verifier.status.revokedSessions, 0)
})

t.test('a session-revoked event naming only the user ends the tokens issued up to it, not later logins', async (t) => {
  const { issuer, verifier } = await start(t)
  const sub = randomUUID()
  const now = Math.floor(Date.now() / 1000)
  const before = await issuer.accessToken({ sub, iat: now - 10 })
  const after = await issuer.accessToken({ sub, iat: now + 1 })
  await issuer.deliver({ [SESSION_REVOKED]: { event_timestamp: now - 5 } }, { subId: { format: 'iss_sub', iss: ISSUER, sub } })
  await eventually(() => refused(verifier, before, 'token_revoked'), 2_000, 'the older token refused')
  t.ok(await verifier.verify(after), 'a token issued after the event: accepted')
  // Another issuer's subject of the same id is not this user.
  const foreign = randomUUID()
  const foreignToken = await issuer.accessToken({ sub: foreign, iat: now - 10 })
  const jti = await issuer.deliver({ [SESSION_REVOKED]: { event_timestamp: now } }, { subId: { format: 'iss_sub', iss: 'https://other.test', sub: foreign } })
  await eventually(() => issuer.seen.acked.includes(jti), 2_000, 'acknowledged')
  t.ok(await verifier.verify(foreignToken), 'another issuer\'s subject: ignored')
})

t.test('a backlog larger than maxEvents: ready() waits until the last page', async (t) => {
  const issuer = await fakeIssuer()
  for (let i = 0; i < 250; i++) await issuer.revokeSession(randomUUID())
  const { verifier } = await start(t, { issuer, maxEvents: 100 })
  t.equal(verifier.status.eventsReceived, 250, 'every SET read before ready() resolved')
  t.equal(verifier.status.revokedSessions, 250)
})

t.test('bounded memory: a full map evicts early, and tokens it could name go the stale way', async (t) => {
  const { issuer, verifier } = await start(t, { maxRevokedSessions: 10 })
  const now = Math.floor(Date.now() / 1000)
  for (let i = 0; i < 15; i++) await issuer.revokeSession(randomUUID(), now - 100)
  await eventually(() => verifier.status.eventsReceived === 15, 3_000, 'all read')
  t.ok(verifier.status.revokedSessions <= 10, `at most the cap (${verifier.status.revokedSessions})`)
  t.ok(verifier.status.evictedEarly >= 5)
  const old = await issuer.accessToken({ iat: now - 200 })
  const error = await rejection(verifier.verify(old))
  t.equal(error.code, 'revocation_stale', 'a token older than an evicted revocation cannot be told apart: refused')
  t.ok(await verifier.verify(await issuer.accessToken({ iat: now })), 'a token issued after every evicted end: accepted')
})

t.test('revocations are forgotten once their tokens must have expired', async (t) => {
  const { issuer, verifier } = await start(t, { maxTokenAgeSec: 60, clockToleranceSec: 0 })
  const now = Math.floor(Date.now() / 1000)
  const jti = await issuer.revokeSession(randomUUID(), now - 61)
  await eventually(() => issuer.seen.acked.includes(jti), 2_000, 'acknowledged')
  t.equal(verifier.status.revokedSessions, 0, 'already past maxTokenAgeSec: not even stored')
  const tooOld = await issuer.accessToken({ iat: now - 61, exp: now + 60 })
  t.equal((await rejection(verifier.verify(tooOld))).code, 'invalid_token', 'and no token that old is accepted')
})

t.test('the stream failing: stale after staleAfterMs, fresh again when it answers', async (t) => {
  const { issuer, verifier } = await start(t, { staleAfterMs: 300 })
  const token = await issuer.accessToken()
  t.ok(await verifier.verify(token))
  issuer.pollMode = 'fail'
  await eventually(() => refused(verifier, token, 'revocation_stale'), 3_000, 'stale')
  t.equal(verifier.status.state, 'stale')
  issuer.pollMode = 'ok'
  await eventually(() => verifier.verify(token).then(() => true, () => false), 10_000, 'accepted again')
  t.equal(verifier.status.state, 'ready')
})

t.test('a poll answered 401: a new machine token', async (t) => {
  const { issuer, verifier } = await start(t)
  const tokens = issuer.seen.tokens
  issuer.pollMode = 'unauthorized'
  await eventually(() => issuer.seen.tokens > tokens, 3_000, 'a new token')
  const sid = randomUUID()
  const token = await issuer.accessToken({ sid })
  await issuer.revokeSession(sid)
  await eventually(() => refused(verifier, token, 'token_revoked'), 3_000, 'still learning revocations')
  t.pass('revocations still arrive after the 401')
})

t.test('a SET signed with a key published after the JWKS was fetched: kept until the keys are refetched', async (t) => {
  const { issuer, verifier } = await start(t, { jwksCooldownMs: 500 })
  const next = await issuer.newKey('k2')
  issuer.published = [issuer.signing, next]
  const sid = randomUUID()
  const token = await issuer.accessToken({ sid })
  const jti = await issuer.deliver({ [SESSION_REVOKED]: { event_timestamp: Math.floor(Date.now() / 1000) } }, {
    subId: { format: 'complex', session: { format: 'opaque', id: sid } },
    key: next
  })
  await eventually(() => refused(verifier, token, 'token_revoked'), 5_000, 'processed once the JWKS was refetched')
  t.notOk(jti in issuer.seen.errors, 'never reported as an error')
  // And an access token signed with the new key verifies too.
  t.ok(await verifier.verify(await issuer.accessToken({}, next)))
})

t.test('start-up refusals: ready() rejects with misconfigured, without waiting', async (t) => {
  const cases: Array<[string, (issuer: FakeIssuer) => void]> = [
    ['metadata of another issuer', (issuer) => (issuer.asMetadata = { issuer: `${ISSUER}/` })],
    ['an SSF configuration of another issuer', (issuer) => (issuer.ssfMetadata = { issuer: 'https://other.test' })],
    ['a transmitter without poll delivery', (issuer) => (issuer.ssfMetadata = { delivery_methods_supported: ['urn:ietf:rfc:8935'] })],
    ['no jwks_uri', (issuer) => (issuer.asMetadata = { jwks_uri: undefined })]
  ]
  for (const [name, breakIt] of cases) {
    const issuer = await fakeIssuer()
    breakIt(issuer)
    const verifier = createVerifier({ issuer: ISSUER, audience: 'api', ...CLIENT, fetch: issuer.fetch, logger: quietLogger(), readyTimeoutMs: 5_000 })
    const error = await rejection(verifier.ready())
    t.equal(error.code, 'misconfigured', `${name}: ${error.message}`)
    t.equal(verifier.status.state, 'failed')
    await verifier.close()
  }
  t.throws(() => createVerifier({ issuer: ISSUER, audience: 'api', clientId: 'x', clientSecret: '' }), TypeError)
  t.throws(() => createVerifier({ issuer: ISSUER, audience: 'api', ...CLIENT, algorithms: ['HS256'] }), TypeError)
})

t.test('the issuer unreachable at start: ready() rejects after readyTimeoutMs, verify() refuses, close() ends it', async (t) => {
  const issuer = await fakeIssuer()
  issuer.pollMode = 'fail'
  const verifier = createVerifier({ issuer: ISSUER, audience: 'api', ...CLIENT, fetch: issuer.fetch, logger: quietLogger(), readyTimeoutMs: 500 })
  const error = await rejection(verifier.ready())
  t.equal(error.code, 'unavailable')
  t.equal((await rejection(verifier.verify(await issuer.accessToken()))).code, 'revocation_stale', 'keys known, stream never answered: refused')
  await verifier.close()
  t.equal(issuer.seen.deleted, 1, 'the stream it had created is deleted')
})

t.test('the Fastify plugin gives up before Fastify\'s pluginTimeout, with its own reason', async (t) => {
  const issuer = await fakeIssuer()
  issuer.pollMode = 'fail'
  const app = Fastify({ pluginTimeout: 1_500 })
  app.register(authVerifier, { issuer: ISSUER, audience: 'api', ...CLIENT, fetch: issuer.fetch, logger: quietLogger() })
  t.teardown(() => app.close())
  const started = Date.now()
  await t.rejects(async () => { await app.ready() }, { code: 'unavailable', message: /not ready after 1000 ms/ })
  t.ok(Date.now() - started < 1_500, 'before the hook timeout')
  t.equal(issuer.seen.deleted, 1, 'the verifier closed (its stream deleted)')
})
