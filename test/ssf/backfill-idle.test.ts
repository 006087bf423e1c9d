// A new stream starts with every revocation whose access tokens may still be alive (the last
// ACCESS_TOKEN_TTL + CLOCK_TOLERANCE), and a poll stream nobody polls for SSF_STREAM_IDLE_TTL
// is deleted by housekeeping (docs/ssf.md, "Backfill", "Idle streams"). The clock is moved.
import t from 'tap'
import { API_PREFIX, bearer, decodeJwt, machineToken, registerUser, type TokenPairBody } from '../helper.js'
import { createStream, decodeSet, drain, poll, ssfApp, ssfCall } from './helper.js'

const { app, clock, receiver } = await ssfApp(t, { env: { ACCESS_TOKEN_TTL: '15m', CLOCK_TOLERANCE: '5', SSF_STREAM_IDLE_TTL: '1h' } })
const sidOf = (pair: TokenPairBody): string => decodeJwt(pair.access_token).payload.sid

async function logout(pair: TokenPairBody): Promise<void> {
  const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  if (res.statusCode !== 204) throw new Error(`logout failed: ${res.statusCode}`)
}

t.test('a new stream is backfilled with the revocations of the last ACCESS_TOKEN_TTL + CLOCK_TOLERANCE', async (t) => {
  const old = await registerUser(app)
  await logout(old)
  clock.advance(15 * 60 + 5 + 1) // its access tokens have all expired
  const recent = await registerUser(app)
  await logout(recent)
  clock.advance(15 * 60) // still within 905 s: its tokens may live
  const live = await registerUser(app) // a session that has not ended: nothing to tell

  const token = await machineToken(app, receiver)
  const stream = await createStream(app, token)
  const sessions = (await drain(app, token, stream.stream_id)).map((set) => decodeSet(set).payload.sub_id.session.id)
  t.same(sessions, [sidOf(recent)], 'the recent revocation only')

  await logout(live)
  const next = await poll(app, token, stream.stream_id)
  t.same(Object.values(next.sets).map((set) => decodeSet(set).payload.sub_id.session.id), [sidOf(live)], 'and then what happens next')
  t.equal((await ssfCall(app, token, 'DELETE', `/streams?stream_id=${stream.stream_id}`)).statusCode, 204)
})

t.test('a poll stream not polled for SSF_STREAM_IDLE_TTL is deleted; its status says when', async (t) => {
  let token = await machineToken(app, receiver)
  const idle = await createStream(app, token)
  const polled = await createStream(app, token)
  clock.advance(30 * 60)
  token = await machineToken(app, receiver) // machine tokens live ACCESS_TOKEN_TTL too
  const pollTime = clock.now()
  await poll(app, token, polled.stream_id)
  const status = (await ssfCall(app, token, 'GET', `/status?stream_id=${polled.stream_id}`)).json()
  const deadline = new Date(Math.floor(pollTime.getTime() / 1000) * 1000 + 3600 * 1000)
  t.match(status.reason, /^deleted if not polled before /)
  const announced = new Date(status.reason.replace('deleted if not polled before ', '').replace(/ .*$/, ''))
  t.ok(Math.abs(announced.getTime() - deadline.getTime()) < 2_000, `announced ${announced.toISOString()}`)
  t.ok(status.last_polled_at, 'last_polled_at is shown')

  clock.advance(31 * 60) // the idle one: 61 min without a poll; the other: 31 min
  token = await machineToken(app, receiver)
  const first = await app.runHousekeeping()
  t.equal(first.idleStreams, 1)
  const gone = await ssfCall(app, token, 'POST', `/poll/${idle.stream_id}`, { returnImmediately: true })
  t.equal(gone.statusCode, 404, 'its receiver learns it at the next poll, and creates a new stream')
  t.equal((await ssfCall(app, token, 'GET', `/streams?stream_id=${polled.stream_id}`)).statusCode, 200, 'the polled one stays')

  clock.advance(30 * 60)
  t.equal((await app.runHousekeeping()).idleStreams, 1)
  token = await machineToken(app, receiver)
  t.equal((await ssfCall(app, token, 'GET', `/streams?stream_id=${polled.stream_id}`)).statusCode, 404)
})
