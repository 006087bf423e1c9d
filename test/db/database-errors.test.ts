// isDatabaseUnavailable (src/db/errors.ts) on real error objects: made by pg from what a
// PostgreSQL server sends (a stand-in server answering the start-up with the ErrorResponse that
// PostgreSQL sends in that state), by PGlite, by Node's sockets, and, with TEST_DATABASE_URL, by
// PostgreSQL itself. Outages are unavailable (503); a query's own failure is not (500 or its own
// status).
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import t, { type Test } from 'tap'
import { isDatabaseUnavailable, isReadOnlyRefusal } from '../../src/db/errors.js'
import { ServiceUnavailableError } from '../../src/plugins/http-errors.js'
import { adminQuery } from '../helper.js'
import { copyPgliteTemplate } from '../support/pglite-template.js'

/** A TCP server on 127.0.0.1 that does `onConnection` with every connection; closed after the test. */
async function standIn(t: Test, onConnection: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    onConnection(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as net.AddressInfo).port
}


/** A v3 protocol ErrorResponse ('E') as PostgreSQL sends it: severity, SQLSTATE, message. */
function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.concat([
    ...[['S', 'FATAL'], ['V', 'FATAL'], ['C', code], ['M', message]].map(([type, value]) => Buffer.from(`${type}${value}\0`)),
    Buffer.from([0])
  ])
  const header = Buffer.alloc(5)
  header.write('E', 0)
  header.writeInt32BE(fields.length + 4, 1)
  return Buffer.concat([header, fields])
}

/** The error pg's client gives when the server answers its start-up message with this refusal. */
async function refusalAtConnect(t: Test, code: string, message: string): Promise<unknown> {
  const port = await standIn(t, (socket) => socket.once('data', () => socket.end(errorResponse(code, message))))
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'auth', database: 'auth' })
  client.on('error', () => {})
  return client.connect().then(() => t.fail('connected'), (err: unknown) => err)
}

t.test('what a refusing PostgreSQL sends at connect, as pg reports it', async (t) => {
  const outages: Array<[string, string]> = [
    ['53300', 'sorry, too many clients already'],
    ['53300', 'too many connections for role "auth"'],
    ['57P03', 'the database system is starting up'],
    ['57P03', 'the database system is shutting down'],
    ['57P03', 'the database system is not yet accepting connections'],
    ['57P01', 'terminating connection due to administrator command'],
    ['57P02', 'terminating connection because of crash of another server process'],
    ['55000', 'database "auth" is not currently accepting connections'],
    ['08006', 'could not receive data from client: Connection reset by peer'],
    ['25006', 'cannot execute INSERT in a read-only transaction']
  ]
  for (const [code, message] of outages) {
    const err = await refusalAtConnect(t, code, message)
    t.match(err, { name: 'error', code, message }, `pg's DatabaseError for ${code}`)
    t.ok(isDatabaseUnavailable(err), `${code} ${message}: unavailable`)
  }
  // 55000 "object not in prerequisite state" has other meanings: a query's own failure.
  const other = await refusalAtConnect(t, '55000', 'currval of sequence "s" is not yet defined in this session')
  t.notOk(isDatabaseUnavailable(other), '55000 about something else: not an outage')
  t.notOk(isDatabaseUnavailable(await refusalAtConnect(t, '28P01', 'password authentication failed for user "auth"')), 'a wrong password is configuration, not an outage')
})

t.test('connections refused, reset and timed out', async (t) => {
  const closedPort = await standIn(t, () => {})
  // A port nothing listens on: listen, note the port, close.
  const refusedPort = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
  const refused = await new pg.Client({ host: '127.0.0.1', port: refusedPort }).connect().catch((err: unknown) => err)
  t.match(refused, { code: 'ECONNREFUSED' })
  t.ok(isDatabaseUnavailable(refused), 'connection refused')

  const resetPort = await standIn(t, (socket) => socket.once('data', () => socket.resetAndDestroy()))
  const resetClient = new pg.Client({ host: '127.0.0.1', port: resetPort })
  resetClient.on('error', () => {})
  const reset = await resetClient.connect().catch((err: unknown) => err)
  t.ok(reset instanceof Error, `reset: ${String(reset)}`)
  t.ok(isDatabaseUnavailable(reset), 'connection reset')

  // A server that accepts and never answers: the pool gives up after its connection timeout.
  const pool = new pg.Pool({ host: '127.0.0.1', port: closedPort, connectionTimeoutMillis: 100 })
  pool.on('error', () => {})
  const timedOut = await pool.connect().catch((err: unknown) => err)
  await pool.end()
  t.match(timedOut, { message: /timeout/ })
  t.ok(isDatabaseUnavailable(timedOut), 'connection timeout')

  t.ok(isDatabaseUnavailable(new ServiceUnavailableError({ cause: refused })), 'through a cause')
})

t.test('PGlite: closed is an outage; a read-only refusal is one; a query error is not', async (t) => {
  // A copy of the suite's migrated template: a fresh PGlite spends seconds in initdb.
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'auth-test-')), 'pglite')
  await copyPgliteTemplate(dir)
  const pglite = await PGlite.create(dir)
  t.teardown(async () => {
    if (!pglite.closed) await pglite.close()
    rmSync(path.dirname(dir), { recursive: true, force: true })
  })
  await pglite.exec('create table t (id int primary key); insert into t values (1); create sequence s')

  const readOnly = await pglite.exec('begin read only; insert into t values (2)').catch((err: unknown) => err)
  await pglite.exec('rollback')
  t.match(readOnly, { code: '25006' })
  t.ok(isDatabaseUnavailable(readOnly), 'read-only transaction: unavailable')
  t.ok(isReadOnlyRefusal(readOnly), 'and a refusal the connection keeps giving')

  const notYet = await pglite.query(`select currval('s')`).catch((err: unknown) => err)
  t.match(notYet, { code: '55000' })
  t.notOk(isDatabaseUnavailable(notYet), '55000 currval not yet defined: a query error')
  const duplicate = await pglite.query('insert into t values (1)').catch((err: unknown) => err)
  t.match(duplicate, { code: '23505' })
  t.notOk(isDatabaseUnavailable(duplicate), 'unique violation: a query error')
  const syntax = await pglite.query('selec 1').catch((err: unknown) => err)
  t.match(syntax, { code: '42601' })
  t.notOk(isDatabaseUnavailable(syntax), 'syntax error: a bug, not an outage')

  await pglite.close()
  const closed = await pglite.query('select 1').catch((err: unknown) => err)
  t.ok(isDatabaseUnavailable(closed), `closed: ${String(closed)}`)
})

const databaseUrl = process.env.TEST_DATABASE_URL

t.test('PostgreSQL itself: too many connections, admin shutdown, read-only', { skip: databaseUrl ? false : 'needs PostgreSQL: set TEST_DATABASE_URL' }, async (t) => {
  // A role allowed no connection at all: PostgreSQL answers 53300 "too many connections for role".
  const role = `auth_test_nolimit_${randomUUID().replaceAll('-', '')}`
  await adminQuery(databaseUrl!, `create role ${role} login connection limit 0`)
  t.teardown(() => adminQuery(databaseUrl!, `drop role if exists ${role}`))
  const url = new URL(databaseUrl!)
  url.username = role
  const tooMany = await new pg.Client({ connectionString: url.toString() }).connect().catch((err: unknown) => err)
  t.match(tooMany, { code: '53300', message: /too many connections/ })
  t.ok(isDatabaseUnavailable(tooMany), '53300 too many connections')

  // A query in flight on a backend an operator terminates: 57P01.
  const victim = new pg.Client({ connectionString: databaseUrl })
  victim.on('error', () => {})
  await victim.connect()
  const pid = (await victim.query('select pg_backend_pid() as pid')).rows[0].pid as number
  const sleeping = victim.query('select pg_sleep(10)').catch((err: unknown) => err)
  await new Promise((resolve) => setTimeout(resolve, 100))
  await adminQuery(databaseUrl!, 'select pg_terminate_backend($1)', [pid])
  const shutdown = await sleeping
  t.match(shutdown, { code: '57P01' })
  t.ok(isDatabaseUnavailable(shutdown), '57P01 admin shutdown')
  await victim.end().catch(() => {})

  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  t.teardown(() => client.end())
  await client.query('set default_transaction_read_only = on')
  const readOnly = await client.query('create temporary table t (id int)').catch((err: unknown) => err)
  t.match(readOnly, { code: '25006' })
  t.ok(isDatabaseUnavailable(readOnly), '25006 read-only transaction')
  await client.query('set default_transaction_read_only = off')
  await client.query('create temporary sequence s')
  const notYet = await client.query(`select currval('s')`).catch((err: unknown) => err)
  t.match(notYet, { code: '55000' })
  t.notOk(isDatabaseUnavailable(notYet), '55000 about a sequence: not an outage')
})

t.test('PostgreSQL itself: a deadlock rolls one transaction back, and it is answered 503 (retry), not 500', { skip: databaseUrl ? false : 'needs PostgreSQL: set TEST_DATABASE_URL' }, async (t) => {
  const table = `deadlock_${randomUUID().replaceAll('-', '')}`
  await adminQuery(databaseUrl!, `create table ${table} (id int primary key)`)
  t.teardown(() => adminQuery(databaseUrl!, `drop table if exists ${table}`))
  await adminQuery(databaseUrl!, `insert into ${table} values (1), (2)`)
  const [a, b] = [new pg.Client({ connectionString: databaseUrl }), new pg.Client({ connectionString: databaseUrl })]
  await Promise.all([a.connect(), b.connect()])
  t.teardown(() => Promise.all([a.end(), b.end()]))
  await Promise.all([a.query('begin'), b.query('begin')])
  await a.query(`select id from ${table} where id = 1 for update`)
  await b.query(`select id from ${table} where id = 2 for update`)
  // Each now waits for the row the other holds: PostgreSQL breaks the cycle by failing one.
  const outcomes = await Promise.all([
    a.query(`select id from ${table} where id = 2 for update`).catch((err: unknown) => err),
    b.query(`select id from ${table} where id = 1 for update`).catch((err: unknown) => err)
  ])
  const deadlock = outcomes.find((outcome) => outcome instanceof Error)
  t.match(deadlock, { code: '40P01' })
  t.ok(isDatabaseUnavailable(deadlock), '40P01 deadlock detected: the request may be sent again')
  await Promise.all([a.query('rollback'), b.query('rollback')])
})
