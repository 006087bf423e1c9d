// Failing closed: the real service stopped, the stream's connection cut. Never an acceptance on
// knowledge older than staleAfterMs; with fallback 'introspect', only what the issuer says is active.
import t from 'tap'
import { createVerifier, type FetchLike } from '../src/index.js'
import { eventually, hasTransmitter, logout, NO_TRANSMITTER, quietLogger, register, rejection, startAuth, verifierOptions } from './support.js'

const isPoll = (url: string) => url.includes('/ssf/poll/')

t.test('the service stopped: refused as stale once staleAfterMs has passed, never accepted after', async (t) => {
  const auth = await startAuth(t, { env: { SSF_POLL_TIMEOUT: '2s' } })
  if (!(await hasTransmitter(auth))) {
    t.test('stale', { skip: NO_TRANSMITTER }, () => {})
    return
  }
  const calls: string[] = []
  const counting: FetchLike = (input, init) => {
    calls.push(String(input))
    return fetch(input, init)
  }
  const staleAfterMs = 1_000
  const logger = quietLogger()
  const verifier = createVerifier(verifierOptions(auth, { staleAfterMs, fetch: counting, logger }))
  t.teardown(() => verifier.close())
  await verifier.ready()
  const session = await register(auth)

  // The normal case: no request to the issuer per verification.
  const before = calls.filter((url) => !isPoll(url)).length
  for (let i = 0; i < 50; i++) await verifier.verify(session.accessToken)
  t.equal(calls.filter((url) => !isPoll(url)).length, before, '50 verifications, no request but the stream\'s own polls')

  await auth.stop()
  const stoppedAt = Date.now()
  let lastAccepted = -Infinity
  const refusedAfter = await eventually(async () => {
    try {
      await verifier.verify(session.accessToken)
      lastAccepted = Date.now() - stoppedAt
      return false
    } catch (error) {
      return (error as { code?: string }).code === 'revocation_stale'
    }
  }, staleAfterMs + 3_000, 'refused as stale')
  t.comment(`last accepted ${lastAccepted} ms after the process exited; refused from ${refusedAfter} ms`)
  t.ok(lastAccepted <= staleAfterMs + 100, 'nothing accepted more than staleAfterMs after the last contact')
  for (let i = 0; i < 20; i++) {
    const error = await rejection(verifier.verify(session.accessToken))
    t.equal(error.code, 'revocation_stale')
    t.equal(error.statusCode, 503)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(verifier.status.state, 'stale')
  t.ok(verifier.status.lastError, `the status says why: ${verifier.status.lastError}`)
  t.ok(logger.lines.some((line) => line.level === 'error' && /stale/.test(line.message)), 'logged once as an error')
})

t.test("fallback 'introspect': while the stream is cut, each token is checked at the introspection endpoint", async (t) => {
  const auth = await startAuth(t, { env: { SSF_POLL_TIMEOUT: '1s' } })
  if (!(await hasTransmitter(auth))) {
    t.test('introspect', { skip: NO_TRANSMITTER }, () => {})
    return
  }
  let cut = false
  let introspections = 0
  const cuttable: FetchLike = async (input, init) => {
    const url = String(input)
    if (cut && isPoll(url)) throw new TypeError('fetch failed (the stream\'s connection is cut)')
    if (url.endsWith('/introspect')) introspections++
    return fetch(input, init)
  }
  const verifier = createVerifier(verifierOptions(auth, { staleAfterMs: 500, requestTimeoutMs: 2_000, fallback: 'introspect', fetch: cuttable }))
  t.teardown(() => verifier.close())
  await verifier.ready()
  const alive = await register(auth)
  const ending = await register(auth)
  t.ok(await verifier.verify(alive.accessToken))
  t.equal(introspections, 0, 'fresh: no introspection')

  cut = true
  // The waiting long poll (1 s) is answered; the next one is cut; 500 ms later the stream is stale.
  await eventually(() => verifier.status.state === 'stale', 10_000, 'stale')
  t.equal((await verifier.verify(alive.accessToken)).sub, alive.userId, 'stale: accepted, the issuer says active')
  t.ok(introspections >= 1, `introspected (${introspections})`)

  t.equal(await logout(auth, ending.accessToken), 204)
  const error = await rejection(verifier.verify(ending.accessToken))
  t.equal(error.code, 'token_revoked', 'the logged-out token: refused by introspection, the stream still cut')

  await auth.stop()
  const down = await rejection(verifier.verify(alive.accessToken))
  t.equal(down.code, 'revocation_stale', 'issuer down: introspection fails, refused')
  t.equal(down.statusCode, 503)
})
