// SET conformance (RFC 8417, SSF 1.0 §4, CAEP 1.0; docs/ssf.md, "SETs"): what a receiver
// written by someone else checks. Verified with jose against the service's own JWKS.
import t from 'tap'
import { API_PREFIX, bearer, decodeJwt, registerUser } from '../helper.js'
import { SESSION_REVOKED, VERIFICATION, createStream, decodeSet, poll, setVerifier, ssfCall, ssfApp } from './helper.js'

const { app, token, receiver } = await ssfApp(t)
const metadata = (await app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })).json()
const issuer: string = metadata.issuer
const stream = await createStream(app, token)
const verify = await setVerifier(app, issuer, receiver.clientId)

const pair = await registerUser(app)
const sid = decodeJwt(pair.access_token).payload.sid
// No assertion before the subtests: tap would end the root test while this file still awaits.
const loggedOut = await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
if (loggedOut.statusCode !== 204) throw new Error(`logout failed: ${loggedOut.statusCode}`)
const { sets } = await poll(app, token, stream.stream_id)
const [jti, set] = Object.entries(sets)[0]

t.test('the header: typ secevent+jwt and the kid of a key in the JWKS', async (t) => {
  const { header } = decodeSet(set)
  t.equal(header.typ, 'secevent+jwt')
  t.equal(header.alg, 'EdDSA')
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  t.ok(jwks.keys.some((key: { kid: string }) => key.kid === header.kid), 'the kid is published')
})

t.test('jose verifies it against the JWKS, with the issuer and the stream audience', async (t) => {
  const { payload, protectedHeader } = await verify(set)
  t.equal(protectedHeader.typ, 'secevent+jwt')
  t.equal(payload.iss, issuer)
  t.equal(payload.aud, stream.aud)
  t.equal(stream.aud, receiver.clientId, "the stream's aud is the owning client")
  t.equal(payload.jti, jti, 'the poll answer is keyed by the jti')
  t.type(payload.iat, 'number')
})

t.test('no sub and no exp; sub_id is complex, with iss_sub and the opaque session id', async (t) => {
  const { payload } = decodeSet(set)
  t.notOk('sub' in payload, 'no sub (SSF 1.0: the subject is sub_id)')
  t.notOk('exp' in payload, 'no exp')
  t.same(payload.sub_id, {
    format: 'complex',
    user: { format: 'iss_sub', iss: issuer, sub: pair.user.id },
    session: { format: 'opaque', id: sid }
  })
  t.type(payload.txn, 'string')
})

t.test('exactly one event, CAEP session-revoked with its members', async (t) => {
  const { payload } = decodeSet(set)
  t.same(Object.keys(payload.events), [SESSION_REVOKED])
  const event = payload.events[SESSION_REVOKED]
  t.same(Object.keys(event).sort(), ['event_timestamp', 'initiating_entity', 'reason_admin'])
  t.equal(event.initiating_entity, 'user')
  t.same(event.reason_admin, { en: 'logout' })
  t.ok(Number.isInteger(event.event_timestamp) && Math.abs(event.event_timestamp - Date.now() / 1000) < 60, 'seconds, now')
})

t.test('a redelivery carries the very same bytes', async (t) => {
  const again = await poll(app, token, stream.stream_id)
  t.equal(again.sets[jti], set)
})

t.test('a verification SET: the state, sub_id opaque with the stream id, no txn', async (t) => {
  const res = await ssfCall(app, token, 'POST', '/verify', { stream_id: stream.stream_id, state: 'abc123' })
  t.equal(res.statusCode, 204)
  const found = await poll(app, token, stream.stream_id, { ack: [jti] })
  const [verificationJti, verification] = Object.entries(found.sets)[0]
  const { payload } = await verify(verification)
  t.equal(payload.jti, verificationJti)
  t.same(payload.sub_id, { format: 'opaque', id: stream.stream_id })
  t.same(payload.events, { [VERIFICATION]: { state: 'abc123' } })
  t.notOk('sub' in payload || 'exp' in payload || 'txn' in payload)
})
