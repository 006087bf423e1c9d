// The limits hold in total, however many instances: three server processes share one count, in
// their PostgreSQL database by default and in Redis with REDIS_URL. Each request goes to the next
// instance in turn; the addresses come through X-Forwarded-For (TRUST_PROXY=127.0.0.1), fresh for
// every run, so counts left in Redis by an earlier run never meet this one's. And when the store
// cannot answer, a limited request is refused (503), never let through uncounted.
import { randomInt, randomUUID } from 'node:crypto'
import { connect } from 'node:net'
import pg from 'pg'
import t, { type Test } from 'tap'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { openDatabase } from '../../src/db/database.js'
import { migrateToLatest } from '../../src/db/migrate.js'
import { freePort, startServer, type ServerProcess } from '../support/server-process.js'
import { API_PREFIX, PASSWORD, buildTestApp, uniqueEmail } from '../helper.js'

const databaseUrl = process.env.TEST_DATABASE_URL
const REDIS_URL = 'redis://127.0.0.1:6379'
const ACCOUNT_MAX = 4
const IP_MAX = 6

const redisUp = await new Promise<boolean>((resolve) => {
  const socket = connect(6379, '127.0.0.1')
  socket.once('connect', () => {
    socket.destroy()
    resolve(true)
  })
  socket.once('error', () => resolve(false))
})

/** A database of this file's own, migrated: other files' counts never mix with these. */
async function ownDatabase(t: Test): Promise<string> {
  const name = `auth_test_limits_${randomUUID().replaceAll('-', '')}`
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  t.teardown(async () => {
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    await client.query(`drop database if exists ${name} with (force)`)
    await client.end()
  })
  const url = new URL(databaseUrl!)
  url.pathname = `/${name}`
  const handle = await openDatabase({ databaseUrl: url.toString(), pgliteDir: '' })
  await migrateToLatest(handle.db)
  await handle.close()
  return url.toString()
}

const randomAddress = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`

async function threeInstances(t: Test, env: Record<string, string>): Promise<ServerProcess[]> {
  const shared = {
    ...env,
    RATE_LIMIT: 'on',
    RATE_LIMIT_ACCOUNT_MAX: String(ACCOUNT_MAX),
    RATE_LIMIT_IP_MAX: String(IP_MAX),
    TRUST_PROXY: '127.0.0.1',
    JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA')
  }
  const servers = await Promise.all([startServer(shared), startServer(shared), startServer(shared)])
  t.teardown(() => Promise.all(servers.map((server) => server.stop())))
  return servers
}

async function post(server: ServerProcess, path: string, address: string, body: unknown): Promise<{ status: number, retryAfter: string | null }> {
  const response = await fetch(`${server.url}${API_PREFIX}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
    body: JSON.stringify(body)
  })
  await response.arrayBuffer()
  return { status: response.status, retryAfter: response.headers.get('retry-after') }
}

async function limitsHoldInTotal(t: Test, servers: ServerProcess[]) {
  t.test('per address: /register from one address, round robin over three instances', async (t) => {
    const address = randomAddress()
    const statuses: number[] = []
    for (let i = 0; i < IP_MAX + 2; i++) {
      statuses.push((await post(servers[i % 3], '/register', address, { email: uniqueEmail('limits'), password: PASSWORD })).status)
    }
    t.same(statuses, [...Array(IP_MAX).fill(201), 429, 429], `${IP_MAX} in all, not ${IP_MAX} per instance`)
    t.equal((await post(servers[0], '/register', randomAddress(), { email: uniqueEmail('limits'), password: PASSWORD })).status, 201, 'another address is not limited')
  })

  t.test('per (account, address): failed logins, round robin', async (t) => {
    const address = randomAddress()
    const email = uniqueEmail('limits')
    t.equal((await post(servers[0], '/register', randomAddress(), { email, password: PASSWORD })).status, 201)
    const statuses: number[] = []
    for (let i = 0; i < ACCOUNT_MAX + 1; i++) statuses.push((await post(servers[i % 3], '/login', address, { email, password: 'wrong password!' })).status)
    t.same(statuses, [...Array(ACCOUNT_MAX).fill(401), 429], `${ACCOUNT_MAX} failures in all`)
    const refused = await post(servers[(ACCOUNT_MAX + 1) % 3], '/login', address, { email, password: PASSWORD })
    t.equal(refused.status, 429, 'the right password from that address too, on the next instance')
    t.ok(Number(refused.retryAfter) > 0, `Retry-After: ${refused.retryAfter}`)
    t.equal((await post(servers[2], '/login', randomAddress(), { email, password: PASSWORD })).status, 200, 'the owner from another address gets in')
  })
}

t.test('three instances, the counts in their PostgreSQL database', { skip: databaseUrl ? false : 'needs PostgreSQL: set TEST_DATABASE_URL (PGlite is one process)' }, async (t) => {
  const servers = await threeInstances(t, { DATABASE_URL: await ownDatabase(t) })
  await limitsHoldInTotal(t, servers)
})

t.test('three instances, the counts in Redis', {
  skip: !databaseUrl ? 'needs PostgreSQL: set TEST_DATABASE_URL' : redisUp ? false : 'needs Redis on 127.0.0.1:6379'
}, async (t) => {
  const servers = await threeInstances(t, { DATABASE_URL: await ownDatabase(t), REDIS_URL })
  await limitsHoldInTotal(t, servers)
})

t.test('the store unreachable: limited requests answer 503, nothing else is touched', async (t) => {
  const port = await freePort() // nothing listens there
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT: 'on', REDIS_URL: `redis://127.0.0.1:${port}` } })
  const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/register`, payload: { email: uniqueEmail('limits'), password: PASSWORD } })
  t.equal(res.statusCode, 503, 'refused, not let through uncounted')
  t.ok(res.headers['retry-after'], 'with Retry-After')
  t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Service temporarily unavailable' })
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'what is not limited still answers')
})
