// Stream management (SSF 1.0 §7, §8; docs/ssf.md, "Streams"): the transmitter metadata,
// create/read/update/replace/delete, status and verification, every success and error case,
// the scopes, and that a client sees only its own streams (404 for any other's).
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { API_PREFIX, bearer, errorShape, machineToken, registerUser, testClient } from '../helper.js'
import {
  CREDENTIAL_CHANGE,
  POLL,
  PUSH,
  SESSION_REVOKED,
  SSF,
  VERIFICATION,
  createStream,
  eventOf,
  poll,
  ssfApp,
  ssfCall,
  type StreamConfig
} from './helper.js'

const reader = testClient('ssf.read')
const manager = testClient('ssf.manage')
const introspector = testClient('introspect')
const other = testClient('ssf.manage ssf.read')
const { app, token, receiver } = await ssfApp(t, { extraClients: [reader, manager, introspector, other]})
const [readerToken, managerToken, introspectToken, otherToken] = await Promise.all([reader, manager, introspector, other].map((client) => machineToken(app, client)))
const metadata = (await app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })).json()
const issuer: string = metadata.issuer
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const errorBody = (statusCode: number, code: string) => ({ ...errorShape(statusCode), code })

t.test('GET /.well-known/ssf-configuration: SSF 1.0 transmitter metadata, absolute URLs', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const base = issuer
  t.same(res.json(), {
    spec_version: '1_0',
    issuer,
    jwks_uri: `${base}/.well-known/jwks.json`,
    delivery_methods_supported: [POLL],
    configuration_endpoint: `${base}${SSF}/streams`,
    status_endpoint: `${base}${SSF}/status`,
    verification_endpoint: `${base}${SSF}/verify`,
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
    default_subjects: 'ALL'
  }, 'push is not offered without SSF_PUSH_ALLOWED_ORIGINS')
  const oauth = (await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json()
  t.equal(oauth.issuer, issuer, 'the same issuer as every other document')
})

t.test('scopes: no token 401, a user token 401, no SSF scope 403, the wrong one 403', async (t) => {
  const user = await registerUser(app)
  const id = (await createStream(app, token)).stream_id
  const noToken = await ssfCall(app, null, 'GET', '/streams')
  t.equal(noToken.statusCode, 401)
  t.match(noToken.headers['www-authenticate'], /^Bearer/)
  const userToken = await app.inject({ method: 'GET', url: `${SSF}/streams`, headers: bearer(user.access_token) })
  t.equal(userToken.statusCode, 401)
  t.match(userToken.headers['www-authenticate'], /error="invalid_token"/)

  const cases: Array<[string, string, string, unknown, string]> = [
    [introspectToken, 'GET', '/streams', undefined, 'ssf.read'],
    [introspectToken, 'POST', '/streams', { delivery: { method: POLL } }, 'ssf.manage'],
    [readerToken, 'POST', '/streams', { delivery: { method: POLL } }, 'ssf.manage'],
    [readerToken, 'PATCH', '/streams', { stream_id: id }, 'ssf.manage'],
    [readerToken, 'PUT', '/streams', { stream_id: id, delivery: { method: POLL } }, 'ssf.manage'],
    [readerToken, 'DELETE', `/streams?stream_id=${id}`, undefined, 'ssf.manage'],
    [readerToken, 'POST', '/status', { stream_id: id, status: 'paused' }, 'ssf.manage'],
    [readerToken, 'POST', '/verify', { stream_id: id }, 'ssf.manage'],
    [managerToken, 'GET', '/streams', undefined, 'ssf.read'],
    [managerToken, 'GET', `/status?stream_id=${id}`, undefined, 'ssf.read'],
    [managerToken, 'POST', `/poll/${id}`, {}, 'ssf.read']
  ]
  for (const [who, method, path, body, scope] of cases) {
    const res = await ssfCall(app, who, method as 'GET', path, body)
    t.equal(res.statusCode, 403, `${method} ${path} without ${scope}`)
    t.match(res.json(), errorBody(403, 'AUTH_INSUFFICIENT_SCOPE'))
    t.equal(res.headers['www-authenticate'], `Bearer error="insufficient_scope", scope="${scope}"`)
  }
  const created = await ssfCall(app, managerToken, 'POST', '/streams', { delivery: { method: POLL } })
  t.equal(created.statusCode, 201, 'ssf.manage alone may create')
  t.equal((await ssfCall(app, readerToken, 'GET', '/streams')).statusCode, 200, 'ssf.read alone may read')
})

t.test('POST /streams: 201 with the whole configuration', async (t) => {
  const res = await ssfCall(app, token, 'POST', '/streams', {
    delivery: { method: POLL },
    events_requested: [SESSION_REVOKED, 'https://example.com/not-supported', SESSION_REVOKED],
    description: 'orders service'
  })
  t.equal(res.statusCode, 201)
  t.equal(res.headers['cache-control'], 'no-store')
  const config = res.json() as StreamConfig
  t.match(config.stream_id, UUID)
  t.same(config, {
    stream_id: config.stream_id,
    iss: issuer,
    aud: receiver.clientId,
    delivery: { method: POLL, endpoint_url: `${issuer}${SSF}/poll/${config.stream_id}` },
    events_supported: [SESSION_REVOKED, CREDENTIAL_CHANGE],
    events_requested: [SESSION_REVOKED, 'https://example.com/not-supported'],
    events_delivered: [SESSION_REVOKED],
    description: 'orders service',
    inactivity_timeout: 3600
  })
  const bare = await createStream(app, token, { delivery: { method: POLL } })
  t.same([bare.events_requested, bare.events_delivered, 'description' in bare], [[], [], false], 'nothing requested, nothing delivered')
})

t.test('POST /streams: bad input is a 400, never a 500', async (t) => {
  const bodies: Array<[unknown, string]> = [
    [{}, 'FST_ERR_VALIDATION'],
    [{ delivery: { method: 'urn:example:carrier-pigeon' } }, 'FST_ERR_VALIDATION'],
    [{ delivery: { method: POLL, extra: 1 } }, 'FST_ERR_VALIDATION'],
    [{ delivery: POLL }, 'FST_ERR_VALIDATION'],
    [{ delivery: { method: POLL }, events_requested: SESSION_REVOKED }, 'FST_ERR_VALIDATION'],
    [{ delivery: { method: POLL }, events_requested: [''] }, 'FST_ERR_VALIDATION'],
    [{ delivery: { method: POLL }, events_requested: ['x\u0000'] }, 'FST_ERR_VALIDATION'],
    [{ delivery: { method: POLL }, description: 'x'.repeat(1025) }, 'FST_ERR_VALIDATION'],
    [{ delivery: { method: POLL }, iss: issuer }, 'FST_ERR_VALIDATION'],
    [{ delivery: { method: POLL }, format: 'opaque' }, 'FST_ERR_VALIDATION'],
    [{ delivery: { method: POLL, endpoint_url: 'https://receiver.example.com/poll' } }, 'AUTH_INVALID_STREAM_REQUEST'],
    [{ delivery: { method: PUSH, endpoint_url: 'https://receiver.example.com/events' } }, 'AUTH_INVALID_STREAM_REQUEST'],
    [[], 'FST_ERR_VALIDATION'],
    [null, 'FST_ERR_VALIDATION']
  ]
  for (const [body, code] of bodies) {
    const res = await app.inject({ method: 'POST', url: `${SSF}/streams`, headers: { ...bearer(token), 'content-type': 'application/json' }, payload: JSON.stringify(body) })
    t.equal(res.statusCode, 400, JSON.stringify(body).slice(0, 80))
    t.match(res.json(), errorBody(400, code))
  }
  const text = await app.inject({ method: 'POST', url: `${SSF}/streams`, headers: { ...bearer(token), 'content-type': 'text/plain' }, payload: 'hello' })
  t.equal(text.statusCode, 415)
  const broken = await app.inject({ method: 'POST', url: `${SSF}/streams`, headers: { ...bearer(token), 'content-type': 'application/json' }, payload: '{' })
  t.equal(broken.statusCode, 400)
})

t.test('SSF_MAX_STREAMS_PER_CLIENT: the next creation is a 409', async (t) => {
  const crowded = testClient('ssf.manage ssf.read')
  const ctx = await ssfApp(t, { extraClients: [crowded], env: { SSF_MAX_STREAMS_PER_CLIENT: '2' } })
  const crowdedToken = await machineToken(ctx.app, crowded)
  const results = await Promise.all([1, 2, 3].map(() => ssfCall(ctx.app, crowdedToken, 'POST', '/streams', { delivery: { method: POLL } })))
  t.same(results.map((res) => res.statusCode).sort(), [201, 201, 409], 'concurrent creations still stop at the limit')
  t.match(results.find((res) => res.statusCode === 409)!.json(), errorBody(409, 'AUTH_TOO_MANY_STREAMS'))
  t.equal((await ssfCall(ctx.app, ctx.token, 'POST', '/streams', { delivery: { method: POLL } })).statusCode, 201, 'per client')
})

t.test('GET /streams: one by stream_id, or the list of the caller\'s own', async (t) => {
  const mine = await createStream(app, otherToken)
  const second = await createStream(app, otherToken, { delivery: { method: POLL }, events_requested: [CREDENTIAL_CHANGE] })
  const one = await ssfCall(app, otherToken, 'GET', `/streams?stream_id=${mine.stream_id}`)
  t.equal(one.statusCode, 200)
  t.same(one.json(), mine)
  const list = await ssfCall(app, otherToken, 'GET', '/streams')
  t.same(list.json(), [mine, second], 'oldest first')
  const theirs = (await ssfCall(app, token, 'GET', '/streams')).json() as StreamConfig[]
  t.ok(theirs.length > 0 && theirs.every((config) => config.aud === receiver.clientId), 'another client lists only its own')
  t.same((await ssfCall(app, readerToken, 'GET', '/streams')).json(), [], 'none: an empty list')

  for (const streamId of [mine.stream_id.toUpperCase(), mine.stream_id]) {
    t.equal((await ssfCall(app, otherToken, 'GET', `/streams?stream_id=${streamId}`)).statusCode, 200, 'a UUID in either case')
  }
  for (const [query, status] of [[`stream_id=${randomUUID()}`, 404], ['stream_id=nope', 404], [`stream_id=${'a'.repeat(65)}`, 400], ['unknown=1', 400]] as const) {
    t.equal((await ssfCall(app, otherToken, 'GET', `/streams?${query}`)).statusCode, status, query)
  }
  const foreign = await ssfCall(app, token, 'GET', `/streams?stream_id=${mine.stream_id}`)
  t.equal(foreign.statusCode, 404, "another client's stream does not exist for the caller")
  t.match(foreign.json(), errorBody(404, 'AUTH_STREAM_NOT_FOUND'))
})

t.test('PATCH /streams: members left out stay; transmitter-supplied ones must match', async (t) => {
  const stream = await createStream(app, token, { delivery: { method: POLL }, events_requested: [SESSION_REVOKED], description: 'keep me' })
  const patch = (body: Record<string, unknown>, who = token) => ssfCall(app, who, 'PATCH', '/streams', { stream_id: stream.stream_id, ...body })

  const changed = await patch({ events_requested: [SESSION_REVOKED, CREDENTIAL_CHANGE] })
  t.equal(changed.statusCode, 200)
  t.same(changed.json(), { ...stream, events_requested: [SESSION_REVOKED, CREDENTIAL_CHANGE], events_delivered: [SESSION_REVOKED, CREDENTIAL_CHANGE] })
  t.equal((await patch({ description: null })).json().description, undefined, 'null clears the description')
  const echoed = await patch({ iss: issuer, aud: [stream.aud], events_supported: [CREDENTIAL_CHANGE, SESSION_REVOKED], inactivity_timeout: 3600, delivery: stream.delivery, events_delivered: ['anything'] })
  t.equal(echoed.statusCode, 200, 'transmitter-supplied members that match are fine (events_delivered is ignored)')

  for (const body of [
    { iss: 'https://elsewhere.example.com' },
    { aud: 'someone-else' },
    { aud: [stream.aud, 'someone-else'] },
    { events_supported: [SESSION_REVOKED] },
    { inactivity_timeout: 60 },
    { delivery: { method: POLL, endpoint_url: `${issuer}${SSF}/poll/${randomUUID()}` } }
  ]) {
    const res = await patch(body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.match(res.json(), errorBody(400, 'AUTH_INVALID_STREAM_REQUEST'))
  }
  for (const body of [{ stream_id: undefined }, { status: 'paused' }, { events_requested: 'x' }]) {
    t.equal((await ssfCall(app, token, 'PATCH', '/streams', { ...(body.stream_id === undefined && 'stream_id' in body ? {} : { stream_id: stream.stream_id }), ...body })).statusCode, 400, JSON.stringify(body))
  }
  t.equal((await patch({ events_requested: [] }, otherToken)).statusCode, 404, "another client's stream")
  t.equal((await ssfCall(app, token, 'PATCH', '/streams', { stream_id: randomUUID() })).statusCode, 404)
  t.same((await ssfCall(app, token, 'GET', `/streams?stream_id=${stream.stream_id}`)).json().events_requested, [SESSION_REVOKED, CREDENTIAL_CHANGE])
})

t.test('PUT /streams: the whole receiver-supplied configuration; a read-modify-write round trip', async (t) => {
  const stream = await createStream(app, token, { delivery: { method: POLL }, events_requested: [SESSION_REVOKED], description: 'old' })
  const roundTrip = await ssfCall(app, token, 'PUT', '/streams', stream)
  t.equal(roundTrip.statusCode, 200)
  t.same(roundTrip.json(), stream, 'the configuration as read, put back, changes nothing')
  const replaced = await ssfCall(app, token, 'PUT', '/streams', { stream_id: stream.stream_id, delivery: { method: POLL } })
  const { description: _dropped, ...withoutDescription } = stream
  t.same(replaced.json(), { ...withoutDescription, events_requested: [], events_delivered: [] }, 'left out: removed')
  t.equal((await ssfCall(app, token, 'PUT', '/streams', { stream_id: stream.stream_id })).statusCode, 400, 'delivery is required')
  t.equal((await ssfCall(app, otherToken, 'PUT', '/streams', { stream_id: stream.stream_id, delivery: { method: POLL } })).statusCode, 404)
})

t.test('DELETE /streams', async (t) => {
  const stream = await createStream(app, token)
  t.equal((await ssfCall(app, otherToken, 'DELETE', `/streams?stream_id=${stream.stream_id}`)).statusCode, 404, "not another client's")
  const res = await ssfCall(app, token, 'DELETE', `/streams?stream_id=${stream.stream_id}`)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal((await ssfCall(app, token, 'GET', `/streams?stream_id=${stream.stream_id}`)).statusCode, 404)
  t.equal((await ssfCall(app, token, 'DELETE', `/streams?stream_id=${stream.stream_id}`)).statusCode, 404, 'again: 404')
  t.equal((await ssfCall(app, token, 'DELETE', '/streams')).statusCode, 400, 'stream_id is required')
  t.equal((await ssfCall(app, token, 'DELETE', '/streams?stream_id=x')).statusCode, 404)
})

t.test('GET and POST /status', async (t) => {
  const stream = await createStream(app, token)
  const read = await ssfCall(app, token, 'GET', `/status?stream_id=${stream.stream_id}`)
  t.equal(read.statusCode, 200)
  t.match(read.json(), { stream_id: stream.stream_id, status: 'enabled', reason: /^deleted if not polled before \d{4}-/ })
  const paused = await ssfCall(app, token, 'POST', '/status', { stream_id: stream.stream_id, status: 'paused', reason: 'maintenance' })
  t.equal(paused.statusCode, 200)
  t.match(paused.json(), { stream_id: stream.stream_id, status: 'paused', reason: /^maintenance; deleted if not polled before / })
  t.equal((await ssfCall(app, token, 'GET', `/status?stream_id=${stream.stream_id}`)).json().status, 'paused')
  t.equal((await ssfCall(app, token, 'POST', '/status', { stream_id: stream.stream_id, status: 'enabled' })).json().status, 'enabled')

  for (const body of [{ stream_id: stream.stream_id, status: 'on' }, { stream_id: stream.stream_id }, { status: 'paused' }, { stream_id: stream.stream_id, status: 'paused', subject: {} }]) {
    t.equal((await ssfCall(app, token, 'POST', '/status', body)).statusCode, 400, JSON.stringify(body))
  }
  t.equal((await ssfCall(app, token, 'GET', '/status')).statusCode, 400, 'stream_id is required')
  t.equal((await ssfCall(app, otherToken, 'GET', `/status?stream_id=${stream.stream_id}`)).statusCode, 404)
  t.equal((await ssfCall(app, otherToken, 'POST', '/status', { stream_id: stream.stream_id, status: 'disabled' })).statusCode, 404)
  t.equal((await ssfCall(app, token, 'GET', `/status?stream_id=${stream.stream_id}`)).json().status, 'enabled', 'untouched by the other client')
})

t.test('POST /verify: a verification SET first in the stream, with the state', async (t) => {
  const stream = await createStream(app, token)
  await poll(app, token, stream.stream_id)
  const user = await registerUser(app)
  await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(user.access_token) })
  const res = await ssfCall(app, token, 'POST', '/verify', { stream_id: stream.stream_id, state: 'first' })
  t.equal(res.statusCode, 204)
  t.equal((await ssfCall(app, token, 'POST', '/verify', { stream_id: stream.stream_id })).statusCode, 204, 'state is optional')
  const sets = Object.values((await poll(app, token, stream.stream_id, { maxEvents: 1000 })).sets)
  t.same(sets.slice(0, 2).map((set) => eventOf(set).type), [VERIFICATION, VERIFICATION], 'verification events come first')
  t.same(sets.slice(0, 2).map((set) => eventOf(set).body), [{ state: 'first' }, {}])

  for (const body of [{}, { stream_id: stream.stream_id, state: 5 }, { stream_id: stream.stream_id, extra: true }]) {
    t.equal((await ssfCall(app, token, 'POST', '/verify', body)).statusCode, 400, JSON.stringify(body))
  }
  t.equal((await ssfCall(app, otherToken, 'POST', '/verify', { stream_id: stream.stream_id })).statusCode, 404)
  t.equal((await ssfCall(app, token, 'POST', '/verify', { stream_id: randomUUID() })).statusCode, 404)

  const codes = []
  for (let i = 0; i < 9; i++) codes.push((await ssfCall(app, token, 'POST', '/verify', { stream_id: stream.stream_id })).statusCode)
  t.same(codes, [204, 204, 204, 204, 204, 204, 204, 204, 429], 'at most ten wait')
})

t.test('a disabled stream takes no verification event', async (t) => {
  const stream = await createStream(app, token)
  await ssfCall(app, token, 'POST', '/status', { stream_id: stream.stream_id, status: 'disabled' })
  t.equal((await ssfCall(app, token, 'POST', '/verify', { stream_id: stream.stream_id })).statusCode, 204)
  await ssfCall(app, token, 'POST', '/status', { stream_id: stream.stream_id, status: 'enabled' })
  const sets = Object.values((await poll(app, token, stream.stream_id, { maxEvents: 1000 })).sets)
  t.notOk(sets.some((set) => eventOf(set).type === VERIFICATION))
})
