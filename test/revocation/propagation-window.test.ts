// The propagation window, measured: after a logout's 204 on instance A, how long does instance B
// (another server process on the same PostgreSQL) still accept the logged-out access token?
// Each try logs a fresh session in on A, makes B cache it as live (GET /verify: 204), logs it out
// on A (204), and from the moment that 204 arrives polls GET /verify on B back to back until the
// first 401. Printed over all tries: the time from A's 204 to B's first 401 (an upper bound of
// the window: it includes one poll's round trip), the time to the sending of the last poll that
// B still answered 204 (a lower bound: B accepted the token at least that long after A's 204),
// how many polls were still answered 204, and when this test's own LISTEN connection got the
// notification (PostgreSQL's delivery, apart from B). Only the generous correctness bound is
// asserted: the figures depend on the machine (docs/revocation.md, "How fast", has them).
import { Agent, request as httpRequest } from 'node:http'
import pg from 'pg'
import t from 'tap'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { listenerApplicationName, REVOKED_CHANNEL } from '../../src/db/revocation-feed.js'
import { PASSWORD, decodeJwt, uniqueEmail, type TokenPairBody } from '../helper.js'
import { startServer, type ServerProcess } from '../support/server-process.js'

const databaseUrl = process.env.TEST_DATABASE_URL
const TRIES = Number(process.env.PROPAGATION_TRIES ?? 200)
/** Correctness, not speed: B must refuse the token within this long of A's 204. */
const BOUND_MS = 2_000

interface Answer {
  status: number
  body: string
  /** performance.now() when the request was sent and when the response's headers arrived. */
  sentAt: number
  at: number
}

/** One request on the instance's keep-alive connection (no connection set-up in the timings). */
function call(server: ServerProcess, agent: Agent, method: string, path: string, token?: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = httpRequest(`${server.url}/api/v1/auth${path}`, {
      method,
      agent,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {})
      }
    })
    req.on('response', (res) => {
      const at = performance.now()
      let text = ''
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode!, body: text, sentAt, at }))
    })
    req.on('error', reject)
    const sentAt = performance.now()
    req.end(payload)
  })
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

function summary(values: readonly number[]): string {
  const sorted = [...values].sort((x, y) => x - y)
  return `p50 ${percentile(sorted, 50).toFixed(2)} ms, p99 ${percentile(sorted, 99).toFixed(2)} ms, max ${sorted[sorted.length - 1].toFixed(2)} ms`
}

t.test('propagation window of a logout across two instances', { skip: databaseUrl ? false : 'needs PostgreSQL: set TEST_DATABASE_URL (PGlite is one process)' }, async (t) => {
  const env = { DATABASE_URL: databaseUrl!, JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA') }
  const [a, b] = await Promise.all([startServer(env), startServer(env)])
  const agentA = new Agent({ keepAlive: true, maxSockets: 1 })
  const agentB = new Agent({ keepAlive: true, maxSockets: 1 })
  const listener = new pg.Client({ connectionString: databaseUrl })
  await listener.connect()
  t.teardown(async () => {
    agentA.destroy()
    agentB.destroy()
    await listener.end()
    await Promise.all([a.stop(), b.stop()])
  })

  // This process's own LISTEN: when PostgreSQL delivered each revocation to a listener.
  const delivered = new Map<string, number>()
  listener.on('notification', (message) => {
    if (message.payload) delivered.set(message.payload, performance.now())
  })
  await listener.query(`LISTEN ${REVOKED_CHANNEL}`)

  // B's listener is connected (its feed is healthy once its first heartbeat is back).
  let connected = false
  for (let i = 0; i < 200 && !connected; i++) {
    const { rows } = await listener.query('select 1 from pg_stat_activity where application_name = $1', [listenerApplicationName(b.pid)])
    connected = rows.length > 0
    if (!connected) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.ok(connected, "B's revocation listener is connected")
  await new Promise((resolve) => setTimeout(resolve, 200))

  const email = uniqueEmail('propagation')
  t.equal((await call(a, agentA, 'POST', '/register', undefined, { email, password: PASSWORD })).status, 201)

  const windows: number[] = []
  const lastStale: number[] = []
  const deliveries: number[] = []
  let staleTries = 0
  let stalePolls = 0
  let failures = 0
  for (let i = 0; i < TRIES; i++) {
    const login = await call(a, agentA, 'POST', '/login', undefined, { email, password: PASSWORD })
    const session = JSON.parse(login.body) as TokenPairBody
    const sessionId = decodeJwt(session.access_token).payload.sid as string
    const warm = await call(b, agentB, 'GET', '/verify', session.access_token)
    const logout = await call(a, agentA, 'POST', '/logout', session.access_token)
    if (warm.status !== 204 || logout.status !== 204) {
      failures += 1
      t.fail(`try ${i}: B's first /verify ${warm.status} (want 204), A's logout ${logout.status} (want 204)`)
      continue
    }
    let stale = 0
    let lastStaleAt: number | undefined
    let first401: number | undefined
    while (performance.now() - logout.at < BOUND_MS) {
      const answer = await call(b, agentB, 'GET', '/verify', session.access_token)
      if (answer.status === 401) {
        first401 = answer.at
        break
      }
      stale += 1
      lastStaleAt = answer.sentAt
    }
    if (first401 === undefined) {
      failures += 1
      t.fail(`try ${i}: B still accepted the token ${BOUND_MS} ms after A's logout (${stale} answers 204)`)
      continue
    }
    windows.push(first401 - logout.at)
    lastStale.push(lastStaleAt === undefined ? 0 : lastStaleAt - logout.at)
    if (stale > 0) staleTries += 1
    stalePolls += stale
    const deliveredAt = delivered.get(sessionId)
    if (deliveredAt !== undefined) deliveries.push(deliveredAt - logout.at)
    delivered.delete(sessionId)
  }

  t.equal(failures, 0, `every logout reached B within ${BOUND_MS} ms, in ${TRIES} tries`)
  if (windows.length > 0) {
    t.comment(`${windows.length} tries; B answered 204 after A's 204 in ${staleTries} of them (${stalePolls} stale answers in all)`)
    t.comment(`A's 204 to B's first 401 (upper bound of the window): ${summary(windows)}`)
    t.comment(`A's 204 to the last poll B answered 204 (lower bound, 0 if none): ${summary(lastStale)}`)
    if (deliveries.length > 0) {
      t.comment(`A's 204 to this test's own LISTEN getting the notification (negative: before): ${summary(deliveries)}`)
    }
  }
})
