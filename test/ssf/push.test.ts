// Push delivery (RFC 8935; docs/ssf.md, "Push"): a plain node:http receiver on loopback checks
// every SET with jose against the service's JWKS. It refuses a few times, then accepts: every SET
// arrives, in order, none lost. A redirect is never followed; only allowed origins are pushed to.
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { sql } from 'kysely'
import t, { type Test } from 'tap'
import { API_PREFIX, bearer, decodeJwt, loginUser, registerUser, type TokenPairBody } from '../helper.js'
import { PUSH, SESSION_REVOKED, VERIFICATION, createStream, decodeSet, eventually, setVerifier, ssfApp, ssfCall } from './helper.js'

interface Hit {
  jti: string
  set: string
  contentType?: string
  accept?: string
  status: number
}

interface Receiver {
  readonly origin: string
  readonly hits: Hit[]
  /** What the next requests are answered with (the last entry repeats). */
  answers: Array<{ status: number, body?: string, headers?: Record<string, string> }>
  verify?: (set: string) => Promise<unknown>
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** A receiver on 127.0.0.1, closed when the test ends. */
async function startReceiver(t: Test): Promise<Receiver> {
  const receiver: Receiver = { origin: '', hits: [], answers: [{ status: 202 }] }
  const server: Server = createServer((request, response) => {
    void (async () => {
      const set = await readBody(request)
      let jti = '?'
      try {
        jti = String(receiver.verify ? ((await receiver.verify(set)) as { payload: { jti: string } }).payload.jti : decodeSet(set).payload.jti)
      } catch {
        jti = 'INVALID'
      }
      const answer = receiver.answers.length > 1 ? receiver.answers.shift()! : receiver.answers[0]
      receiver.hits.push({ jti, set, contentType: request.headers['content-type'], accept: request.headers.accept, status: answer.status })
      response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
      response.end(answer.body ?? '')
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const { port } = server.address() as AddressInfo
  return Object.assign(receiver, { origin: `http://127.0.0.1:${port}` })
}

const sidOf = (pair: TokenPairBody): string => decodeJwt(pair.access_token).payload.sid

t.test('every SET arrives, verified, in order, after the receiver refused a few times', async (t) => {
  const receiver = await startReceiver(t)
  const { app, token, receiver: client } = await ssfApp(t, { env: { SSF_PUSH_ALLOWED_ORIGINS: receiver.origin } })
  const issuer = (await app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })).json().issuer
  receiver.verify = await setVerifier(app, issuer, client.clientId)
  receiver.answers = [{ status: 500 }, { status: 500 }, { status: 503 }, { status: 202 }]

  const first = await registerUser(app)
  const others = [await loginUser(app, first.user.email), await loginUser(app, first.user.email)]
  const stream = await createStream(app, token, { delivery: { method: PUSH, endpoint_url: `${receiver.origin}/events` }, events_requested: [SESSION_REVOKED] })
  t.same(stream.delivery, { method: PUSH, endpoint_url: `${receiver.origin}/events` })
  t.equal(stream.inactivity_timeout, undefined, 'push streams are not deleted for idleness')
  t.equal((await ssfCall(app, token, 'POST', '/verify', { stream_id: stream.stream_id, state: 'hello' })).statusCode, 204)
  const sessions = [first, ...others]
  for (const pair of sessions) {
    t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })).statusCode, 204)
  }

  await eventually(() => receiver.hits.some((hit) => hit.status === 500), 5_000, 'a refused attempt')
  // The failure is recorded once the service has read the answer: poll the status for it.
  let failing: Record<string, unknown> = {}
  await eventually(async () => {
    failing = (await ssfCall(app, token, 'GET', `/status?stream_id=${stream.stream_id}`)).json()
    return typeof failing.last_error === 'string'
  }, 5_000, 'the failure in the status')
  t.match(failing, { status: 'enabled', delivery_attempts: Number, last_error: /^50[03]$/ }, `while failing: ${JSON.stringify(failing)}`)

  await eventually(() => receiver.hits.filter((hit) => hit.status === 202).length === 4, 10_000, 'four accepted SETs')
  const accepted = receiver.hits.filter((hit) => hit.status === 202)
  t.notOk(receiver.hits.some((hit) => hit.jti === 'INVALID'), 'every SET verified with the JWKS')
  t.ok(receiver.hits.every((hit) => hit.contentType === 'application/secevent+jwt' && hit.accept === 'application/json'))
  t.same(receiver.hits.slice(0, 4).map((hit) => hit.jti), Array(4).fill(receiver.hits[0].jti), 'retries are of the SET at the head')
  t.ok(receiver.hits.slice(0, 4).every((hit) => hit.set === receiver.hits[0].set), 'the very same bytes each time')
  t.same(decodeSet(accepted[0].set).payload.events, { [VERIFICATION]: { state: 'hello' } }, 'the verification first')
  t.same(accepted.slice(1).map((hit) => decodeSet(hit.set).payload.sub_id.session.id), sessions.map(sidOf), 'then each logout, in order')
  t.equal(new Set(accepted.map((hit) => hit.jti)).size, 4, 'none twice')

  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(receiver.hits.length, 7, 'nothing more is sent once accepted')
  const done = (await ssfCall(app, token, 'GET', `/status?stream_id=${stream.stream_id}`)).json()
  t.match(done, { status: 'enabled', delivery_attempts: 0, last_delivered_at: String })
  t.notOk('last_error' in done)
})

t.test('an event that settles when an older transaction ends is pushed then, not at the next lease round', {
  skip: process.env.TEST_DATABASE_URL ? false : 'PGlite runs one transaction at a time'
}, async (t) => {
  const receiver = await startReceiver(t)
  const { app, token } = await ssfApp(t, { env: { SSF_PUSH_ALLOWED_ORIGINS: receiver.origin } })
  await createStream(app, token, { delivery: { method: PUSH, endpoint_url: `${receiver.origin}/events` }, events_requested: [SESSION_REVOKED] })
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  let holding!: () => void
  const held = new Promise<void>((resolve) => (holding = resolve))
  // An older transaction with an xid: the logout's event commits above the horizon, and no
  // notification will say when the horizon passes it.
  const holder = app.db.transaction().execute(async (trx) => {
    await sql`select pg_current_xact_id()`.execute(trx)
    holding()
    await released
  })
  await held
  const pair = await registerUser(app)
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })).statusCode, 204)
  // Longer than the lease round a notification brings (within a second).
  await new Promise((resolve) => setTimeout(resolve, 1_500))
  t.equal(receiver.hits.length, 0, 'nothing pushed while the older transaction runs')
  release()
  await holder
  const endedAt = Date.now()
  await eventually(() => receiver.hits.length === 1, 12_000, 'the SET pushed')
  const took = Date.now() - endedAt
  t.ok(took < 2_000, `pushed ${took} ms after the older transaction ended (the lease round comes every 10 s)`)
  t.same(receiver.hits.map((hit) => decodeSet(hit.set).payload.sub_id.session.id), [sidOf(pair)])
})

t.test('a redirect is not followed, and counts as a failure', async (t) => {
  const receiver = await startReceiver(t)
  const elsewhere = await startReceiver(t)
  const { app, token } = await ssfApp(t, { env: { SSF_PUSH_ALLOWED_ORIGINS: `${receiver.origin},${elsewhere.origin}` } })
  receiver.answers = [{ status: 307, headers: { location: `${elsewhere.origin}/stolen` } }, { status: 202 }]
  const stream = await createStream(app, token, { delivery: { method: PUSH, endpoint_url: `${receiver.origin}/events` }, events_requested: [SESSION_REVOKED] })
  const pair = await registerUser(app)
  await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  await eventually(() => receiver.hits.length === 1, 5_000, 'the first attempt')
  await eventually(async () => (await ssfCall(app, token, 'GET', `/status?stream_id=${stream.stream_id}`)).json().last_error !== undefined, 5_000, 'the failure recorded')
  t.match((await ssfCall(app, token, 'GET', `/status?stream_id=${stream.stream_id}`)).json().last_error, /^307 redirect/)
  await eventually(() => receiver.hits.some((hit) => hit.status === 202), 5_000, 'the retry accepted')
  t.same(elsewhere.hits, [], 'the redirect target was never asked')
})

t.test('a 400 invalid_request drops that SET; any other 400 is retried', async (t) => {
  const receiver = await startReceiver(t)
  const { app, token } = await ssfApp(t, { env: { SSF_PUSH_ALLOWED_ORIGINS: receiver.origin } })
  receiver.answers = [
    { status: 400, body: JSON.stringify({ err: 'invalid_request', description: 'bad SET' }) },
    { status: 400, body: JSON.stringify({ err: 'invalid_audience', description: 'not for us' }) },
    { status: 202 }
  ]
  await createStream(app, token, { delivery: { method: PUSH, endpoint_url: `${receiver.origin}/events` }, events_requested: [SESSION_REVOKED] })
  const first = await registerUser(app)
  const second = await registerUser(app)
  for (const pair of [first, second]) await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  await eventually(() => receiver.hits.some((hit) => hit.status === 202), 5_000, 'an accepted SET')
  const sessions = receiver.hits.map((hit) => decodeSet(hit.set).payload.sub_id.session.id)
  t.same(sessions, [sidOf(first), sidOf(second), sidOf(second)], 'the first dropped; the second retried until accepted')
})

t.test('push only to origins the operator allows; never with credentials in the URL', async (t) => {
  const receiver = await startReceiver(t)
  const { app, token } = await ssfApp(t, { env: { SSF_PUSH_ALLOWED_ORIGINS: receiver.origin } })
  const metadata = (await app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' })).json()
  t.same(metadata.delivery_methods_supported, ['urn:ietf:rfc:8936', PUSH])
  const port = Number(new URL(receiver.origin).port)
  for (const url of [
    `http://127.0.0.1:${port + 1}/events`,
    `https://127.0.0.1:${port}/events`,
    `http://localhost:${port}/events`,
    'http://169.254.169.254/latest/meta-data/',
    `http://user:secret@127.0.0.1:${port}/events`,
    `${receiver.origin}/events#x`,
    'not a url',
    'file:///etc/passwd'
  ]) {
    const res = await ssfCall(app, token, 'POST', '/streams', { delivery: { method: PUSH, endpoint_url: url } })
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, 'AUTH_INVALID_STREAM_REQUEST')
  }
  const missing = await ssfCall(app, token, 'POST', '/streams', { delivery: { method: PUSH } })
  t.equal(missing.statusCode, 400, 'push needs an endpoint_url')
  const ok = await ssfCall(app, token, 'POST', '/streams', { delivery: { method: PUSH, endpoint_url: `${receiver.origin}/any/path?q=1` } })
  t.equal(ok.statusCode, 201, 'any path and query at an allowed origin')
  t.equal((await ssfCall(app, token, 'POST', `/poll/${ok.json().stream_id}`, { returnImmediately: true })).statusCode, 404, 'a push stream has no poll URL')
  const moved = await ssfCall(app, token, 'PATCH', '/streams', { stream_id: ok.json().stream_id, delivery: { method: PUSH, endpoint_url: 'http://127.0.0.2/x' } })
  t.equal(moved.statusCode, 400, 'an update is checked the same way')

  const switched = await ssfCall(app, token, 'PATCH', '/streams', { stream_id: ok.json().stream_id, delivery: { method: 'urn:ietf:rfc:8936' } })
  t.equal(switched.statusCode, 200, 'push to poll')
  t.same(switched.json().delivery, { method: 'urn:ietf:rfc:8936', endpoint_url: `${metadata.issuer}${API_PREFIX}/ssf/poll/${ok.json().stream_id}` })
  const back = await ssfCall(app, token, 'PUT', '/streams', { stream_id: ok.json().stream_id, delivery: { method: PUSH, endpoint_url: `${receiver.origin}/events` } })
  t.equal(back.statusCode, 200, 'and back to push')
  t.same(back.json().delivery, { method: PUSH, endpoint_url: `${receiver.origin}/events` })
})
