// Revocation through the real transmitter: the verifier's own poll stream on the real service.
// Skipped, saying why, while the service has no transmitter.
import t, { type Test } from 'tap'
import { createVerifier, type Verifier } from '../src/index.js'
import {
  API, eventually, hasTransmitter, login, logout, machineToken, NO_TRANSMITTER, register, rejection, startAuth, startFront,
  quietLogger, verifierOptions, type Auth
} from './support.js'

/** Generous: a logout reaches a long-polling verifier in milliseconds; a loaded CI machine is slow. */
const PROPAGATION_BOUND_MS = 5_000

async function streamStatus(auth: Auth, streamId: string): Promise<number> {
  const token = await machineToken(auth)
  const response = await fetch(`${auth.url}${API}/ssf/streams?stream_id=${encodeURIComponent(streamId)}`, { headers: { authorization: `Bearer ${token}` } })
  await response.arrayBuffer()
  return response.status
}

async function started(t: Test, auth: Auth, extra: Record<string, unknown> = {}): Promise<Verifier> {
  const verifier = createVerifier(verifierOptions(auth, extra))
  t.teardown(() => verifier.close())
  await verifier.ready()
  return verifier
}

t.test('revocation through the real transmitter', async (t) => {
  // A short long-poll wait: the poll loop goes round several times within the test.
  const auth = await startAuth(t, { env: { SSF_POLL_TIMEOUT: '2s' } })
  if (!(await hasTransmitter(auth))) {
    t.test('revocation', { skip: NO_TRANSMITTER }, () => {})
    return
  }

  t.test('a logout reaches the verifier within a bounded poll; other sessions live on', async (t) => {
    const verifier = await started(t, auth)
    const first = await register(auth)
    const second = await login(auth, first.email)
    t.ok(await verifier.verify(first.accessToken), 'before the logout: accepted')
    // Let the loop settle into a long poll, so the event wakes a waiting request.
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal(await logout(auth, first.accessToken), 204)
    const delay = await eventually(async () => {
      try {
        await verifier.verify(first.accessToken)
        return false
      } catch (error) {
        return (error as { code?: string }).code === 'token_revoked'
      }
    }, PROPAGATION_BOUND_MS, 'the logged-out token refused')
    t.comment(`propagation delay: ${delay} ms (checked every 20 ms)`)
    const error = await rejection(verifier.verify(first.accessToken))
    t.equal(error.code, 'token_revoked')
    t.equal(error.statusCode, 401)
    t.equal((await verifier.verify(second.accessToken)).sub, second.userId, 'the user\'s other session: still accepted')
    t.ok(verifier.status.eventsReceived >= 1)
    t.equal(verifier.status.state, 'ready')
  })

  t.test('a verifier that starts after the logout learns it from the backfill', async (t) => {
    const session = await register(auth)
    t.equal(await logout(auth, session.accessToken), 204)
    const verifier = await started(t, auth)
    t.equal((await rejection(verifier.verify(session.accessToken))).code, 'token_revoked', 'refused from the first request')
  })

  t.test('close() deletes the stream', async (t) => {
    const verifier = createVerifier(verifierOptions(auth))
    await verifier.ready()
    const streamId = verifier.status.streamId
    t.type(streamId, 'string')
    t.equal(await streamStatus(auth, streamId!), 200, 'the stream exists while the verifier runs')
    await verifier.close()
    t.equal(await streamStatus(auth, streamId!), 404, 'gone after close()')
    t.equal(verifier.status.state, 'closed')
    t.equal((await rejection(verifier.verify('x'))).code, 'closed', 'verify() after close(): refused')
  })

  t.test('a stream deleted under the verifier is replaced (backfilled); revocations still arrive', async (t) => {
    const verifier = await started(t, auth)
    const session = await register(auth)
    const streamId = verifier.status.streamId!
    const token = await machineToken(auth)
    const deleted = await fetch(`${auth.url}${API}/ssf/streams?stream_id=${encodeURIComponent(streamId)}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })
    t.equal(deleted.status, 204)
    await eventually(() => verifier.status.streamsCreated === 2, 10_000, 'a new stream')
    t.not(verifier.status.streamId, streamId)
    t.equal(await logout(auth, session.accessToken), 204)
    await eventually(() => verifier.verify(session.accessToken).then(() => false, (error) => error.code === 'token_revoked'), PROPAGATION_BOUND_MS, 'refused on the new stream')
    t.pass('refused')
  })

  t.test('a silent network (the long poll neither answered nor closed): stale within pollTimeoutMs + staleAfterMs', async (t) => {
    const front = await startFront(t)
    front.target = Number(new URL(auth.server.url).port)
    // The verifier reaches the service through the front; the issuer is still the service's URL.
    const verifier = await started(t, auth, {
      staleAfterMs: 800,
      pollTimeoutMs: 3_000,
      requestTimeoutMs: 1_000,
      fetch: (input: string | URL, init?: RequestInit) => fetch(String(input).replace(auth.url, front.url), init)
    })
    const session = await register(auth)
    t.ok(await verifier.verify(session.accessToken))
    await new Promise((resolve) => setTimeout(resolve, 300))
    front.freeze()
    const frozenAt = Date.now()
    // The waiting long poll counts as contact up to its timeout (3 s; the service answers a long poll after 2 s,
    // and that answer never arrives), then staleAfterMs: refused from 3.8 s on.
    let lastAccepted = 0
    const staleAfter = await eventually(async () => {
      try {
        await verifier.verify(session.accessToken)
        lastAccepted = Date.now() - frozenAt
        return false
      } catch (error) {
        return (error as { code?: string }).code === 'revocation_stale'
      }
    }, 10_000, 'refused as stale')
    t.comment(`accepted until ${lastAccepted} ms after the freeze, refused as stale from ${staleAfter} ms`)
    t.ok(lastAccepted <= 3_000 + 800 + 200, 'never accepted past pollTimeoutMs + staleAfterMs')
    t.equal(verifier.status.state, 'stale')
    const error = await rejection(verifier.verify(session.accessToken))
    t.equal(error.statusCode, 503)
  })
})

const onPostgres = process.env.TEST_DATABASE_URL ? false : 'needs PostgreSQL (TEST_DATABASE_URL): two instances sharing one database'

t.test('restart on PostgreSQL: a logout while the verifier cannot reach the service still arrives', { skip: onPostgres }, async (t) => {
  const front = await startFront(t)
  const a = await startAuth(t, { publicUrl: front.url })
  front.target = Number(new URL(a.server.url).port)
  if (!(await hasTransmitter(a))) {
    t.test('revocation', { skip: NO_TRANSMITTER }, () => {})
    return
  }
  const logger = quietLogger()
  const verifier = await started(t, a, { staleAfterMs: 60_000, logger })
  const session = await register(a)
  t.ok(await verifier.verify(session.accessToken))

  // Cut the verifier off (connections refused at once), log out directly on the instance, kill it.
  front.target = 1
  front.cutConnections()
  const direct = { url: a.server.url }
  t.equal(await logout(direct, session.accessToken), 204)
  await a.stop()
  t.ok(await verifier.verify(session.accessToken), 'not learnt yet (the verifier is cut off, within staleAfterMs)')

  // Another instance on the same database, behind the same issuer URL: the stream is still there.
  const b = await startAuth(t, { publicUrl: front.url, client: a.client, privateKeyPem: a.privateKeyPem })
  front.target = Number(new URL(b.server.url).port)
  await eventually(() => verifier.verify(session.accessToken).then(() => false, (error) => error.code === 'token_revoked'), 15_000, 'refused once the stream answers again')
    .catch((error) => {
      t.comment(JSON.stringify(verifier.status), JSON.stringify(logger.lines.slice(-5)))
      throw error
    })
  t.equal(verifier.status.streamsCreated, 1, 'the same stream, unacknowledged events delivered again')
})
