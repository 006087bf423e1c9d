// Poll delivery (RFC 8936; docs/ssf.md, "Poll"): acknowledgements, redelivery of what was not
// acknowledged, moreAvailable and maxEvents, long polls woken by a logout (and empty after
// SSF_POLL_TIMEOUT), paused and disabled streams, types not requested.
import t from 'tap'
import { API_PREFIX, bearer, decodeJwt, loginUser, registerUser, type TokenPairBody } from '../helper.js'
import { CREDENTIAL_CHANGE, POLL, SESSION_REVOKED, createStream, cursorReport, decodeSet, drain, poll, ssfApp, ssfCall } from './helper.js'

const { app, token } = await ssfApp(t, { env: { SSF_POLL_TIMEOUT: '1s', PG_POOL_SIZE: '2' } })
const sidOf = (pair: TokenPairBody): string => decodeJwt(pair.access_token).payload.sid
const sessionOf = (set: string): string => decodeSet(set).payload.sub_id.session?.id

async function logout(pair: TokenPairBody): Promise<void> {
  const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  if (res.statusCode !== 204) throw new Error(`logout failed: ${res.statusCode}`)
}

/** `n` sessions of one user, ended one by one (n events, in this order). */
async function endedSessions(n: number): Promise<string[]> {
  const first = await registerUser(app)
  const pairs = [first]
  for (let i = 1; i < n; i++) pairs.push(await loginUser(app, first.user.email))
  for (const pair of pairs) await logout(pair)
  return pairs.map(sidOf)
}

/** A fresh stream that has delivered (and been acknowledged) everything so far. */
async function freshStream(events: string[] = [SESSION_REVOKED, CREDENTIAL_CHANGE]) {
  const stream = await createStream(app, token, { delivery: { method: POLL }, events_requested: events })
  await drain(app, token, stream.stream_id)
  return stream.stream_id
}

t.test('unacknowledged SETs come again; acknowledged ones never', async (t) => {
  const id = await freshStream()
  const sids = await endedSessions(3)
  const first = await poll(app, token, id)
  t.same(Object.values(first.sets).map(sessionOf), sids, 'all three, in order')
  t.equal(first.moreAvailable, false)
  const again = await poll(app, token, id)
  t.same(again.sets, first.sets, 'nothing acknowledged: the same SETs again, byte for byte')

  const [a, b, c] = Object.keys(first.sets)
  const afterB = await poll(app, token, id, { ack: [b] })
  t.same(Object.keys(afterB.sets), [a, c], 'an ack beyond the cursor is kept')
  const afterA = await poll(app, token, id, { ack: [a] })
  t.same(Object.keys(afterA.sets), [c])
  const stored = await app.db.selectFrom('ssf_stream_acks').select('event_id').where('stream_id', '=', id).execute()
  t.same(stored, [], 'the cursor passed both acks: none is stored any more')
  const done = await poll(app, token, id, { ack: [c] })
  t.same(done, { sets: {}, moreAvailable: false })
  t.same(await poll(app, token, id, { ack: [a, b, c] }), { sets: {}, moreAvailable: false }, 'acking again changes nothing')
})

t.test('setErrs end redelivery just like an ack', async (t) => {
  const id = await freshStream()
  await endedSessions(2)
  const [a, b] = Object.keys((await poll(app, token, id)).sets)
  const res = await poll(app, token, id, { setErrs: { [a]: { err: 'invalid_key', description: 'no such key' } } })
  t.same(Object.keys(res.sets), [b])
})

t.test('acks of SETs of another stream, or of no SET at all, are ignored', async (t) => {
  const one = await freshStream()
  const other = await freshStream()
  await endedSessions(1)
  const [jti] = Object.keys((await poll(app, token, one)).sets)
  const [otherJti] = Object.keys((await poll(app, token, other)).sets)
  const res = await poll(app, token, one, { ack: [otherJti, 'garbage', `999999999.${one}`, `v1.${one}`] })
  t.same(Object.keys(res.sets), [jti], 'still delivered here')
  t.same(Object.keys((await poll(app, token, other)).sets), [otherJti], 'and there')
})

t.test('an ack of an event that does not exist yet does not skip it later', async (t) => {
  const id = await freshStream()
  const [latest] = await app.db.selectFrom('security_events').select((eb) => eb.fn.max('id').as('id')).execute()
  const next = Number(latest.id) + 1
  t.same((await poll(app, token, id, { ack: [`${next}.${id}`, `${next + 1}.${id}`] })).sets, {})
  const sids = await endedSessions(2)
  t.same(Object.values((await poll(app, token, id)).sets).map(sessionOf), sids)
})

t.test('maxEvents and moreAvailable', async (t) => {
  const id = await freshStream()
  const sids = await endedSessions(5)
  const two = await poll(app, token, id, { maxEvents: 2 })
  t.same(Object.values(two.sets).map(sessionOf), sids.slice(0, 2))
  t.equal(two.moreAvailable, true)
  const none = await poll(app, token, id, { maxEvents: 0, ack: Object.keys(two.sets) })
  t.same(none, { sets: {}, moreAvailable: true }, 'maxEvents 0: acknowledge only')
  const rest = await poll(app, token, id, { maxEvents: 3 })
  t.same(Object.values(rest.sets).map(sessionOf), sids.slice(2))
  t.equal(rest.moreAvailable, false)
})

t.test('a long poll is answered as soon as a logout happens', async (t) => {
  const id = await freshStream()
  const pair = await registerUser(app)
  const started = Date.now()
  const waiting = ssfCall(app, token, 'POST', `/poll/${id}`, {})
  await new Promise((resolve) => setTimeout(resolve, 150))
  await logout(pair)
  const res = await waiting
  const elapsed = Date.now() - started
  t.equal(res.statusCode, 200)
  t.same(Object.values(res.json().sets).map((set) => sessionOf(set as string)), [sidOf(pair)])
  t.ok(elapsed < 900, `answered after ${elapsed} ms, before SSF_POLL_TIMEOUT (1 s)`)
})

t.test('a long poll with nothing to deliver answers empty after SSF_POLL_TIMEOUT', async (t) => {
  const id = await freshStream()
  const started = Date.now()
  const res = await ssfCall(app, token, 'POST', `/poll/${id}`, { returnImmediately: false })
  const elapsed = Date.now() - started
  t.same(res.json(), { sets: {}, moreAvailable: false })
  t.ok(elapsed >= 950 && elapsed < 3_000, `empty after ${elapsed} ms`)
})

t.test('waiting long polls hold no database connection (PG_POOL_SIZE=2)', async (t) => {
  const ids = await Promise.all([1, 2, 3, 4].map(() => freshStream()))
  const waiting = ids.map((id) => ssfCall(app, token, 'POST', `/poll/${id}`, {}))
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  await registerUser(app) // needs a connection while four polls wait
  const elapsed = Date.now() - started
  t.ok(elapsed < 800, `a registration took ${elapsed} ms while four long polls waited`)
  const answers = await Promise.all(waiting)
  t.ok(answers.every((res) => res.statusCode === 200))
})

t.test('a paused stream holds its events; a disabled one drops them', async (t) => {
  const id = await freshStream()
  const status = (status: string) => ssfCall(app, token, 'POST', '/status', { stream_id: id, status })
  t.equal((await status('paused')).statusCode, 200)
  const held = await endedSessions(1)
  t.same((await poll(app, token, id)).sets, {}, 'nothing while paused')
  t.equal((await status('enabled')).statusCode, 200)
  t.same(Object.values((await poll(app, token, id)).sets).map(sessionOf), held, 'held events come once enabled')
  await drain(app, token, id)

  t.equal((await status('disabled')).statusCode, 200)
  await endedSessions(1)
  t.same((await poll(app, token, id)).sets, {}, 'nothing while disabled')
  t.equal((await status('enabled')).statusCode, 200)
  t.same((await poll(app, token, id)).sets, {}, 'what happened while disabled is gone')
  const after = await endedSessions(1)
  if (!t.same(Object.values((await poll(app, token, id)).sets).map(sessionOf), after, 'later events come again')) {
    t.comment(JSON.stringify(await cursorReport(app, id))) // a flake seen once in CI (2026-12-02), not reproduced
  }
})

t.test('types not requested are not delivered, and do not hold the stream back', async (t) => {
  const id = await freshStream([CREDENTIAL_CHANGE, 'https://example.com/unknown-event'])
  await endedSessions(3)
  t.same(await poll(app, token, id), { sets: {}, moreAvailable: false })
  const stream = await app.db.selectFrom('ssf_streams').select(['cursor_id']).where('id', '=', id).executeTakeFirstOrThrow()
  const [latest] = await app.db.selectFrom('security_events').select((eb) => eb.fn.max('id').as('id')).execute()
  t.equal(String(stream.cursor_id), String(latest.id), 'the cursor moved over them')
})

t.test('poll bodies: strict validation, no body is {}', async (t) => {
  const id = await freshStream()
  for (const body of [{ maxEvents: -1 }, { maxEvents: 1.5 }, { returnImmediately: 'true' }, { ack: 'x' }, { ack: [1] }, { unknown: 1 }, { setErrs: { x: { description: 'no err' } } }, { setErrs: [] }]) {
    const res = await ssfCall(app, token, 'POST', `/poll/${id}`, body)
    t.equal(res.statusCode, 400, JSON.stringify(body))
    t.equal(res.json().code, 'FST_ERR_VALIDATION')
  }
  const noBody = await app.inject({ method: 'POST', url: `${API_PREFIX}/ssf/poll/${id}`, headers: bearer(token) })
  t.equal(noBody.statusCode, 200, 'no body at all: a long poll')
})

t.test('the poll URL of a deleted or unknown stream is a 404', async (t) => {
  const id = await freshStream()
  t.equal((await ssfCall(app, token, 'DELETE', `/streams?stream_id=${id}`)).statusCode, 204)
  for (const path of [`/poll/${id}`, '/poll/not-a-uuid', `/poll/${crypto.randomUUID()}`]) {
    const res = await ssfCall(app, token, 'POST', path, { returnImmediately: true })
    t.equal(res.statusCode, 404, path)
    t.equal(res.json().code, 'AUTH_STREAM_NOT_FOUND')
  }
})

t.test('a stream deleted while its long poll waits: that poll answers 404', async (t) => {
  const id = await freshStream()
  const waiting = ssfCall(app, token, 'POST', `/poll/${id}`, {})
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal((await ssfCall(app, token, 'DELETE', `/streams?stream_id=${id}`)).statusCode, 204)
  await endedSessions(1) // a notification wakes the poll
  t.equal((await waiting).statusCode, 404)
})
