// docs/nginx-balancer.conf.example, run for real: nginx balancing three server processes on one
// PostgreSQL. The config under test is the documented file itself, with only the three server
// addresses, the listen address, the log and temp paths swapped for this test's own. Three cases,
// each under a mixed workload of virtual users through nginx: the workload itself gets nothing but
// its expected statuses; a logout sent to any one instance is refused by all three (and how long
// that takes: the propagation window); and a rolling restart of every instance loses no request
// (nginx retries the 503s and refused connections of the instance that is shutting down).
// PostgreSQL only (TEST_DATABASE_URL); skipped when nginx is not installed (.ci/run installs it).
import { chmodSync, closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { findNginx, parseBalancerLog, renderBalancerConfig, skipReason, startNginx, type BalancerLogEntry } from '../support/nginx.js'
import { sendRequest, type Reply } from '../support/http.js'
import { freePort, startServer, type ServerProcess } from '../support/server-process.js'
import { PASSWORD, uniqueEmail } from '../helper.js'

const API = '/api/v1/auth'
const REQUEST_TIMEOUT_MS = 10_000
/** Concurrent virtual users of the mixed workload, each with its own keep-alive connection. */
const VIRTUAL_USERS = 6
const MIXED_SECONDS = 4
/** Each virtual user's pause between two requests: a load that leaves the restarted instances some CPU. */
const THINK_MS = 20
/** Requests per cycle of a virtual user (one registration and two logins each: 3 % hashing). */
const CYCLE = 100
/** Logouts timed until every instance refuses the token. */
const PROPAGATION_TRIES = 40
/** Generous: the correctness bound, not a speed target (the figures are printed). */
const PROPAGATION_BOUND_MS = 2_000
const PROPAGATION_POLL_MS = 3

const databaseUrl = process.env.TEST_DATABASE_URL
const nginx = findNginx()
const reason = databaseUrl
  ? skipReason(nginx, { authRequest: false })
  : 'needs PostgreSQL: set TEST_DATABASE_URL (three instances share sessions through it)'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** One request on a keep-alive agent; bounded by REQUEST_TIMEOUT_MS. */
function send(agent: Agent, base: string, method: 'GET' | 'POST', pathname: string, options: { token?: string, body?: unknown } = {}): Promise<Reply> {
  return sendRequest(`${base}${pathname}`, { method, agent, ...options, timeoutMs: REQUEST_TIMEOUT_MS })
}

interface Pair {
  access_token: string
  refresh_token: string
}

/** What a workload's requests got: status per kind, unexpected answers, connection errors. */
class Tally {
  readonly counts = new Map<string, number>()
  readonly problems: string[] = []
  requests = 0
  unexpected = 0
  status5xx = 0
  errors = 0

  answered(kind: string, status: number, expected: number): boolean {
    this.requests++
    const key = `${kind} ${status}`
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1)
    if (status >= 500) this.status5xx++
    if (status === expected) return true
    this.unexpected++
    if (this.problems.length < 10) this.problems.push(`${kind}: ${status}, want ${expected}`)
    return false
  }

  failed(kind: string, error: Error): void {
    this.requests++
    this.errors++
    if (this.problems.length < 10) this.problems.push(`${kind}: ${error.message}`)
  }

  summary(seconds: number): string {
    const kinds = [...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, n]) => `${key}×${n}`).join(', ')
    return `${this.requests} requests in ${seconds.toFixed(1)} s (${(this.requests / seconds).toFixed(0)}/s): ${kinds}; ` +
      `unexpected ${this.unexpected}, 5xx ${this.status5xx}, connection errors ${this.errors}` +
      (this.problems.length > 0 ? `; first problems: ${this.problems.join('; ')}` : '')
  }
}

/**
 * The mixed workload through `base`: VIRTUAL_USERS users, each on its own keep-alive connection,
 * in cycles of CYCLE requests with THINK_MS between two: register, then verify (most), /me,
 * refresh (rotating its pair), two logins whose sessions it logs out again, and a logout of its
 * own session at the end of the cycle. Runs until stop() is called; resolves when every user
 * finished its current request.
 */
function mixedLoad(base: string): { tally: Tally, stop(): Promise<number> } {
  const tally = new Tally()
  let running = true
  const started = performance.now()

  async function op(agent: Agent, kind: string, method: 'GET' | 'POST', pathname: string, expected: number, options: { token?: string, body?: unknown } = {}): Promise<Reply | undefined> {
    try {
      const reply = await send(agent, base, method, pathname, options)
      return tally.answered(kind, reply.status, expected) ? reply : undefined
    } catch (err) {
      tally.failed(kind, err as Error)
      return undefined
    } finally {
      await sleep(THINK_MS)
    }
  }

  async function virtualUser(): Promise<void> {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      while (running) {
        const email = uniqueEmail('balancer')
        const registered = await op(agent, 'register', 'POST', `${API}/register`, 201, { body: { email, password: PASSWORD } })
        if (!registered) continue
        let pair = JSON.parse(registered.body) as Pair
        const extra: Pair[] = []
        for (let i = 1; i < CYCLE - 1 && running; i++) {
          if (i === 30 || i === 60) {
            const login = await op(agent, 'login', 'POST', `${API}/login`, 200, { body: { email, password: PASSWORD } })
            if (login) extra.push(JSON.parse(login.body) as Pair)
          } else if ((i === 45 || i === 75) && extra.length > 0) {
            await op(agent, 'logout', 'POST', `${API}/logout`, 204, { token: extra.pop()!.access_token })
          } else if (i % 10 === 5) {
            const refreshed = await op(agent, 'refresh', 'POST', `${API}/refresh`, 200, { body: { refresh_token: pair.refresh_token } })
            if (!refreshed) break // its state is unknown now: start a new cycle
            pair = JSON.parse(refreshed.body) as Pair
          } else if (i % 10 === 3) {
            await op(agent, 'me', 'GET', `${API}/me`, 200, { token: pair.access_token })
          } else {
            await op(agent, 'verify', 'GET', `${API}/verify`, 204, { token: pair.access_token })
          }
        }
        for (const session of extra) await op(agent, 'logout', 'POST', `${API}/logout`, 204, { token: session.access_token })
        await op(agent, 'logout', 'POST', `${API}/logout`, 204, { token: pair.access_token })
      }
    } finally {
      agent.destroy()
    }
  }

  const users = Promise.all(Array.from({ length: VIRTUAL_USERS }, () => virtualUser()))
  return {
    tally,
    async stop() {
      running = false
      await users
      return (performance.now() - started) / 1000
    }
  }
}

/** What was appended to `file` since byte `from` (the access log grows while the test reads it). */
function readFrom(file: string, from: number): { text: string, end: number } {
  const end = statSync(file).size
  if (end <= from) return { text: '', end: from }
  const buffer = Buffer.alloc(end - from)
  const fd = openSync(file, 'r')
  try {
    readSync(fd, buffer, 0, buffer.length, from)
  } finally {
    closeSync(fd)
  }
  return { text: buffer.toString('utf8'), end }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

if (reason) {
  t.plan(0, reason)
} else {
  const dir = mkdtempSync(path.join(tmpdir(), 'auth-balancer-'))
  // nginx started as root runs its workers as nobody: they must be able to reach the temp paths.
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const accessLog = path.join(dir, 'access.log')

  // One deployment: the same signing key and issuer everywhere, nginx's address trusted for
  // X-Forwarded-For (docs/gateway.md), a small pool each (three instances on a shared server).
  const env = {
    DATABASE_URL: databaseUrl!,
    JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA'),
    JWT_ISSUER: 'https://auth.test.example',
    TRUST_PROXY: '127.0.0.1',
    PG_POOL_SIZE: '5'
  }
  const started = await Promise.allSettled([startServer(env), startServer(env), startServer(env)])
  const instances: ServerProcess[] = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  if (instances.length < started.length) {
    await Promise.all(instances.map((instance) => instance.stop()))
    throw started.map((r) => (r.status === 'rejected' ? r.reason : undefined)).find(Boolean)
  }
  // Whatever runs at the end: each current instance stopped by its own process.
  t.teardown(() => Promise.all(instances.map((instance) => instance.stop())))
  const ports = instances.map((instance) => Number(new URL(instance.url).port)) as [number, number, number]

  const nginxPort = await freePort()
  const gateway = `http://127.0.0.1:${nginxPort}`
  const confPath = path.join(dir, 'nginx.conf')
  writeFileSync(confPath, renderBalancerConfig(dir, { nginx: nginxPort, instances: ports }))
  const proxy = await startNginx(nginx!, dir, confPath, gateway)
  t.teardown(() => proxy.stop())

  t.teardown(() => {
    if (!t.passing()) {
      t.comment(`nginx output:\n${proxy.output()}`)
      instances.forEach((instance, i) => t.comment(`instance ${i + 1} (port ${ports[i]}) output:\n${instance.output().slice(-4000)}`))
      try {
        t.comment(`access log, last lines:\n${readFrom(accessLog, Math.max(0, statSync(accessLog).size - 4000)).text}`)
      } catch {
        // no log
      }
    }
  })

  const logEntriesSince = (offset: number): BalancerLogEntry[] => parseBalancerLog(readFrom(accessLog, offset).text)
  const logSize = () => statSync(accessLog).size

  t.test('the mixed workload through nginx: only expected statuses, no 5xx, no connection error', async (t) => {
    const from = logSize()
    const load = mixedLoad(gateway)
    await sleep(MIXED_SECONDS * 1000)
    const seconds = await load.stop()
    t.comment(`mixed workload: ${load.tally.summary(seconds)}`)
    t.ok(load.tally.requests > 100, `the workload ran (${load.tally.requests} requests)`)
    t.equal(load.tally.unexpected, 0, 'no unexpected status')
    t.equal(load.tally.status5xx, 0, 'no 5xx')
    t.equal(load.tally.errors, 0, 'no connection error')
    const entries = logEntriesSince(from)
    for (const port of ports) {
      const served = entries.filter((e) => e.attempts.some((a) => a.addr === `127.0.0.1:${port}`)).length
      t.ok(served > 0, `instance on port ${port} got ${served} of the ${entries.length} requests`)
    }
  })

  t.test('a logout sent to any instance is refused by every instance, under load', async (t) => {
    const direct = instances.map(() => new Agent({ keepAlive: true, maxSockets: 4 }))
    t.teardown(() => direct.forEach((agent) => agent.destroy()))
    const setup = new Agent({ keepAlive: true, maxSockets: 4 })
    t.teardown(() => setup.destroy())

    const email = uniqueEmail('balancer-propagation')
    t.equal((await send(setup, gateway, 'POST', `${API}/register`, { body: { email, password: PASSWORD } })).status, 201, 'registered')
    const load = mixedLoad(gateway)
    try {
      // The sessions to log out, made through nginx (4 logins at a time) while the load runs.
      const sessions: Pair[] = []
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (sessions.length < PROPAGATION_TRIES) {
          const reply = await send(setup, gateway, 'POST', `${API}/login`, { body: { email, password: PASSWORD } })
          if (reply.status !== 200) throw new Error(`login through nginx: ${reply.status}`)
          sessions.push(JSON.parse(reply.body) as Pair)
        }
      }))

      const verifyOn = async (i: number, token: string) => (await send(direct[i], instances[i].url, 'GET', `${API}/verify`, { token })).status
      const windows: number[] = []
      const failures: string[] = []
      for (const [k, session] of sessions.slice(0, PROPAGATION_TRIES).entries()) {
        const origin = k % instances.length
        // Every instance knows the session as live (and caches it so) before the logout.
        const before = await Promise.all(instances.map((_, i) => verifyOn(i, session.access_token)))
        if (before.some((status) => status !== 204)) {
          failures.push(`try ${k}: before the logout /verify answered ${before.join(', ')}`)
          continue
        }
        const logout = await send(direct[origin], instances[origin].url, 'POST', `${API}/logout`, { token: session.access_token })
        const loggedOut = performance.now()
        if (logout.status !== 204) {
          failures.push(`try ${k}: logout on instance ${origin + 1} answered ${logout.status}`)
          continue
        }
        const pending = new Set(instances.map((_, i) => i))
        let window: number | undefined
        while (performance.now() - loggedOut < PROPAGATION_BOUND_MS * 2.5) {
          const statuses = await Promise.all([...pending].map(async (i) => [i, await verifyOn(i, session.access_token)] as const))
          for (const [i, status] of statuses) {
            if (status === 401) pending.delete(i)
            else if (status !== 204) failures.push(`try ${k}: instance ${i + 1} answered ${status}`)
          }
          if (pending.size === 0) {
            window = performance.now() - loggedOut
            break
          }
          await sleep(PROPAGATION_POLL_MS)
        }
        if (window === undefined) failures.push(`try ${k}: instances ${[...pending].map((i) => i + 1).join(', ')} still accepted the token`)
        else windows.push(window)
      }

      const seconds = await load.stop()
      const sorted = [...windows].sort((a, b) => a - b)
      t.comment(`propagation window (logout's 204 on one instance to 401 on all three, polled every ${PROPAGATION_POLL_MS} ms), ` +
        `${sorted.length} tries: p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, ` +
        `max ${sorted.at(-1)?.toFixed(1)} ms`)
      t.comment(`mixed workload meanwhile: ${load.tally.summary(seconds)}`)
      t.same(failures, [], 'every try: live everywhere before, refused everywhere after')
      t.equal(windows.length, PROPAGATION_TRIES, `every logout reached all three instances within ${PROPAGATION_BOUND_MS * 2.5} ms`)
      t.ok(sorted.every((ms) => ms <= PROPAGATION_BOUND_MS), `every window within ${PROPAGATION_BOUND_MS} ms (max ${sorted.at(-1)?.toFixed(1)} ms)`)
      t.equal(load.tally.unexpected + load.tally.status5xx + load.tally.errors, 0, 'the workload meanwhile: no unexpected status, 5xx or error')
    } finally {
      await load.stop()
    }
  })

  t.test('rolling restart under load: no request lost', async (t) => {
    const from = logSize()
    const load = mixedLoad(gateway)
    const steps: string[] = []
    try {
      await sleep(1_000)
      for (let i = 0; i < instances.length; i++) {
        const addr = `127.0.0.1:${ports[i]}`
        const stopping = performance.now()
        const code = await instances[i].stop(15_000)
        const stopped = performance.now()
        t.equal(code, 0, `instance ${i + 1} drained and exited 0 on SIGTERM`)
        instances[i] = await startServer(env, { port: ports[i] })
        const ready = performance.now()
        // As docs/gateway.md says: the next instance only once nginx sends this one requests again.
        let offset = logSize()
        let serving: number | undefined
        while (performance.now() - ready < 15_000) {
          const { text, end } = readFrom(accessLog, offset)
          offset = end
          if (parseBalancerLog(text).some((e) => e.attempts.some((a) => a.addr === addr && /^2\d\d$/.test(a.status)))) {
            serving = performance.now()
            break
          }
          await sleep(100)
        }
        t.not(serving, undefined, `instance ${i + 1} answers requests through nginx again`)
        steps.push(`instance ${i + 1}: exited ${((stopped - stopping) / 1000).toFixed(1)} s after SIGTERM, ready ${((ready - stopped) / 1000).toFixed(1)} s later, ` +
          `serving through nginx ${serving === undefined ? 'NEVER' : `${((serving - ready) / 1000).toFixed(1)} s after that`}`)
      }
      await sleep(1_000)
    } finally {
      const seconds = await load.stop()
      t.comment(`rolling restart: ${steps.join('; ')}`)
      t.comment(`mixed workload meanwhile: ${load.tally.summary(seconds)}`)
    }
    t.equal(load.tally.status5xx, 0, 'no 5xx reached a client')
    t.equal(load.tally.errors, 0, 'no connection error')
    t.equal(load.tally.unexpected, 0, 'no unexpected status')

    const entries = logEntriesSince(from)
    const retried = entries.filter((e) => e.attempts.length > 1)
    const firstAnswers = new Map<string, number>()
    for (const entry of retried) firstAnswers.set(entry.attempts[0].status, (firstAnswers.get(entry.attempts[0].status) ?? 0) + 1)
    t.comment(`nginx retried ${retried.length} of ${entries.length} requests on another instance ` +
      `(first answer: ${[...firstAnswers.entries()].map(([status, n]) => `${status}×${n}`).join(', ') || 'none'}; 502 = no connection); ` +
      `${retried.filter((e) => /POST/.test(e.request)).length} of them POSTs`)
    t.ok(entries.every((e) => e.status < 500), 'the access log has no 5xx answered to a client')
  })
}
