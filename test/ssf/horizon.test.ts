// The horizon (docs/ssf.md, "How a stream reads the log"), on PostgreSQL where transactions
// really overlap: identity values are handed out before commit and not in transaction order,
// so a stream reads only what no running transaction of its database can still precede, in
// (txid, id) order; another database's transactions do not hold it back.
import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { pendingSets } from '../../src/repositories/ssf-streams.js'
import { API_PREFIX, bearer, decodeJwt, registerUser } from '../helper.js'
import { createStream, decodeSet, drain, pollOnce, ssfApp, ssfCall } from './helper.js'

const { app, token, onPostgres } = await ssfApp(t, { env: { SSF_POLL_TIMEOUT: '5s' } })
const skip = onPostgres ? false : 'PGlite runs one transaction at a time'

function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { opened, open }
}

type Tx = Parameters<Parameters<ReturnType<typeof app.db.transaction>['execute']>[0]>[0]

async function insertEvent(trx: Tx, sessionId: string): Promise<string> {
  const { rows } = await sql<{ id: string }>`
    insert into security_events (occurred_at, event_type, user_id, session_id, initiating_entity, reason_admin)
    values (now(), 'session-revoked', ${randomUUID()}, ${sessionId}, 'user', 'logout')
    returning id::text as id`.execute(trx)
  return rows[0].id
}

const sessionOf = (set: string): string => decodeSet(set).payload.sub_id.session.id

t.test('an event with a lower id that commits later is still delivered after the cursor passed a higher one', { skip }, async (t) => {
  const stream = await createStream(app, token)
  await drain(app, token, stream.stream_id)
  const [early, late] = [randomUUID(), randomUUID()]
  const firstHasXid = gate()
  const secondInserted = gate()
  const releaseSecond = gate()
  let firstId = ''
  let secondId = ''

  // The first transaction takes its xid first but inserts second (the higher id), and commits first.
  const first = app.db.transaction().execute(async (trx) => {
    await sql`select pg_current_xact_id()`.execute(trx)
    firstHasXid.open()
    await secondInserted.opened
    firstId = await insertEvent(trx, late)
  })
  await firstHasXid.opened
  const second = app.db.transaction().execute(async (trx) => {
    secondId = await insertEvent(trx, early)
    secondInserted.open()
    await releaseSecond.opened
  })
  await first
  t.ok(BigInt(secondId) < BigInt(firstId), `the open transaction holds the lower id (${secondId} < ${firstId})`)

  // drain(), not one poll: another file's transaction on the same server may hold the horizon back.
  t.same((await drain(app, token, stream.stream_id)).map(sessionOf), [late], 'the committed event is delivered (and acknowledged)')

  releaseSecond.open()
  await second
  t.same((await drain(app, token, stream.stream_id)).map(sessionOf), [early], 'the lower id, committed later, is not lost')
})

t.test('a long poll gets an event once an older transaction ends, with no notification for that', { skip }, async (t) => {
  const stream = await createStream(app, token)
  await drain(app, token, stream.stream_id)
  const holding = gate()
  const release = gate()
  const holder = app.db.transaction().execute(async (trx) => {
    await sql`select pg_current_xact_id()`.execute(trx)
    holding.open()
    await release.opened
  })
  await holding.opened

  const pair = await registerUser(app)
  const started = Date.now()
  const waiting = ssfCall(app, token, 'POST', `/poll/${stream.stream_id}`, {})
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })).statusCode, 204)
  t.same((await pollOnce(app, token, stream.stream_id)).sets, {}, 'committed, but an older transaction is still running')
  const held = await pendingSets(app.db, stream.stream_id, 10)
  t.same([held?.events.length, held?.settling], [0, true], 'the same read says it is settling')

  await new Promise((resolve) => setTimeout(resolve, 300))
  release.open()
  await holder
  const res = await waiting
  const elapsed = Date.now() - started
  t.same(Object.values(res.json().sets).map((set) => sessionOf(set as string)), [decodeJwt(pair.access_token).payload.sid])
  t.ok(elapsed < 3_000, `answered ${elapsed} ms after the poll started (SSF_POLL_TIMEOUT is 5 s)`)
  const passed = await pendingSets(app.db, stream.stream_id, 10)
  t.same([passed?.events.length, passed?.settling], [1, false], 'once the horizon passed it: shown, no longer settling')
})

t.test('a transaction in another database on the same server holds no stream back', { skip }, async (t) => {
  const stream = await createStream(app, token)
  await drain(app, token, stream.stream_id)
  // The suite's shared database: the app runs on one of its own, on the same server.
  const other = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL })
  await other.connect()
  t.teardown(() => other.end())
  await other.query('begin')
  const { rows: [held] } = await other.query<{ xid: string }>('select pg_current_xact_id()::text as xid')

  const pair = await registerUser(app)
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })).statusCode, 204)
  const { rows: [seen] } = await sql<{ xmin: string }>`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`.execute(app.db)
  t.ok(BigInt(seen.xmin) <= BigInt(held.xid), `the server-wide xmin is held back by the other database's transaction (${seen.xmin} <= ${held.xid})`)
  t.same(Object.values((await pollOnce(app, token, stream.stream_id)).sets).map(sessionOf), [decodeJwt(pair.access_token).payload.sid],
    'delivered at once, while that transaction still runs')
  await other.query('rollback')
})
