// The `logout-all` and `cleanup` scenarios (bench/README.md), PostgreSQL only: their rows are
// made by SQL (bench/lib/bulk.ts).
//
// logout-all: a user with BENCH_LOGOUT_ALL_SESSIONS (10,000) sessions logs out with
// `all_devices`; timed per repetition (sessions made again each time), then /verify of another of
// the user's sessions must be 401 on that instance, and the user has no row left. Meanwhile
// /verify of other users' sessions runs: its p99 before the logout and from its start until
// 500 ms after its answer (the notifications arrive then).
//
// cleanup: BENCH_CLEANUP_ROWS (1,000,000) expired sessions; a second service instance with
// SESSION_CLEANUP_INTERVAL=5s runs the clean-up as every instance does (the housekeeping timer),
// while /verify of the hot sessions goes to that instance: how long until the rows are gone, and
// /verify's p99 before and during.
import type { BulkSessions } from './bulk.js'
import { accessTokenSigner, timeline, verifySource, window } from './bulk.js'
import { sleep } from './children.js'
import { API, type Session } from './http.js'
import { stopCurrentLoad } from './load.js'
import { fmtMs, log } from './report.js'
import { startService, type Service, type SigningKey } from './service.js'

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

interface Latency {
  readonly count: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly reqPerSec: number
}

export interface LogoutAllRun {
  readonly round: number
  readonly repetition: number
  readonly sessions: number
  readonly ms: number
  readonly status: number
  readonly otherAfter: number
  readonly rowsAfter: number
  readonly before: Latency
  readonly during: Latency
}

export interface CleanupRun {
  readonly round: number
  readonly rows: number
  readonly batchSize: number
  /** From the first row gone to the last (polled every 500 ms). */
  readonly seconds: number
  readonly rowsLeft: number
  readonly before: Latency
  readonly during: Latency
  readonly insertSeconds: number
  /** Rows deleted per second in the first and in the second half of the rows (dead index entries slow later batches?). */
  readonly firstHalfRate: number
  readonly secondHalfRate: number
}

export interface BulkScenarioOptions {
  readonly key: SigningKey
  readonly databaseUrl: string
  readonly bulk: BulkSessions
  readonly runId: string
  readonly connections: number
  readonly service: Service
  readonly hot: readonly Session[]
  readonly check: (name: string, ok: boolean, detail: string) => void
}

export class LogoutAllScenario {
  readonly runs: LogoutAllRun[] = []
  private userId: string | undefined

  constructor(private readonly o: BulkScenarioOptions, private readonly sessions: number, private readonly repetitions: number) {}

  async round(round: number): Promise<void> {
    const o = this.o
    this.userId ??= await o.bulk.createUser(`bench-${o.runId}-logout-all@example.com`)
    const sign = await accessTokenSigner(o.key, o.service.url)
    const others = o.hot.map((s) => s.access)
    for (let rep = 1; rep <= this.repetitions; rep++) {
      const ids = await o.bulk.insertSessions(this.userId, this.sessions, new Date(Date.now() + 86_400_000), true)
      const [caller, other] = sign(this.userId, [ids[0], ids[1]])
      const alive = await verifyStatus(o.service.url, other)
      await o.bulk.vacuum()
      // /verify of other users for 1 s before, during and 2 s after the logout.
      let logoutStart = 0
      let logoutEnd = 0
      let status = 0
      const load = timeline(o.service.url, o.service.pid, verifySource(others), o.connections, 4)
      await sleep(1_200)
      logoutStart = Date.now()
      const response = await fetch(`${o.service.url}${API}/logout`, {
        method: 'POST', headers: { authorization: `Bearer ${caller}`, 'content-type': 'application/json' },
        body: JSON.stringify({ all_devices: true }), signal: AbortSignal.timeout(60_000)
      })
      await response.arrayBuffer()
      logoutEnd = Date.now()
      status = response.status
      const t = await load
      const otherAfter = await verifyStatus(o.service.url, other)
      const rowsAfter = await o.bulk.countSessions(this.userId)
      const run: LogoutAllRun = {
        round, repetition: rep, sessions: this.sessions, ms: logoutEnd - logoutStart, status, otherAfter, rowsAfter,
        before: window(t, t.result.measuredFrom + 200, logoutStart),
        during: window(t, logoutStart, logoutEnd + 500)
      }
      this.runs.push(run)
      log(`  logout-all ${fmt(this.sessions)} sessions: ${status} in ${run.ms} ms; another session's token then ${otherAfter} (was ${alive}), ` +
        `${rowsAfter} rows left; /verify of other users p99 ${fmtMs(run.before.p99)} ms before, ${fmtMs(run.during.p99)} ms during ` +
        `(max ${fmtMs(run.during.max)} ms, ${fmt(run.during.reqPerSec)} req/s against ${fmt(run.before.reqPerSec)})`)
      o.check(`logout-all round ${round} #${rep}: 204, every session gone, another session's token refused on this instance`,
        status === 204 && rowsAfter === 0 && otherAfter === 401 && alive === 204,
        `logout ${status}, rows left ${rowsAfter}, the other token ${alive} before and ${otherAfter} after`)
      o.check(`logout-all round ${round} #${rep}: /verify of other users answered 204 meanwhile`, t.result.errors + t.result.unexpected === 0,
        `${fmt(t.result.requests)} requests, ${t.result.errors} errors, ${t.result.unexpected} unexpected`)
    }
  }

  async stop(): Promise<void> {
    if (this.userId) await this.o.bulk.deleteUsers([this.userId])
  }
}

export class CleanupScenario {
  readonly runs: CleanupRun[] = []
  private userId: string | undefined

  constructor(private readonly o: BulkScenarioOptions, private readonly rows: number, private readonly intervalSeconds: number) {}

  async round(round: number): Promise<void> {
    const o = this.o
    this.userId ??= await o.bulk.createUser(`bench-${o.runId}-cleanup@example.com`)
    const inserted = Date.now()
    await o.bulk.insertSessions(this.userId, this.rows, new Date(Date.now() - 2 * 86_400_000), false)
    const insertSeconds = (Date.now() - inserted) / 1000
    await o.bulk.vacuum()
    // Then a second instance on the same database, whose housekeeping timer runs the clean-up
    // (its first run one interval after it starts); the hot sessions' tokens (the main
    // service's issuer) are valid there too.
    const instance = await startService({
      key: o.key, databaseUrl: o.databaseUrl,
      env: { SESSION_CLEANUP_INTERVAL: `${this.intervalSeconds}s`, JWT_ISSUER: process.env.JWT_ISSUER?.trim() || o.service.url }
    })
    try {
      await this.measure(round, instance, insertSeconds)
    } finally {
      await instance.stop()
    }
  }

  private async measure(round: number, instance: Service, insertSeconds: number): Promise<void> {
    const o = this.o
    const total = await o.bulk.countSessions(this.userId!)
    const others = o.hot.map((s) => s.access)
    let firstGone = 0
    let lastGone = 0
    let left = total
    const loadSeconds = 600
    const t0 = Date.now()
    let stop = false
    const polls: Array<[number, number]> = []
    // The load runs until the rows are gone (at most 10 minutes), polled every 500 ms.
    const poll = (async () => {
      while (!stop && Date.now() - t0 < loadSeconds * 1000) {
        await sleep(500)
        left = await o.bulk.countSessions(this.userId!)
        polls.push([Date.now(), left])
        if (left < total && firstGone === 0) firstGone = Date.now()
        if (left === 0) {
          lastGone = Date.now()
          await sleep(1_000)
          break
        }
      }
      stop = true
    })()
    const load = timelineUntil(instance, others, o.connections, () => stop, loadSeconds)
    await poll
    const t = await load
    // Before: from 1.5 s after the load began (the new instance's first requests warm it up).
    const before = window(t, t.result.measuredFrom + 1_500, firstGone || Date.now())
    const during = window(t, firstGone || Date.now(), lastGone || Date.now())
    // When half the rows were gone: the rate of each half.
    const half = polls.find(([, n]) => n <= total / 2)?.[0] ?? lastGone
    const rate = (rows: number, from: number, to: number) => rows / Math.max(0.001, (to - from) / 1000)
    const run: CleanupRun = {
      round, rows: total, batchSize: 1_000, seconds: ((lastGone || Date.now()) - (firstGone || t0)) / 1000, rowsLeft: left, before, during, insertSeconds,
      firstHalfRate: rate(total / 2, firstGone || t0, half || Date.now()), secondHalfRate: rate(total / 2, half || Date.now(), lastGone || Date.now())
    }
    this.runs.push(run)
    log(`  cleanup ${fmt(total)} expired rows (inserted in ${insertSeconds.toFixed(1)} s): gone in ${run.seconds.toFixed(1)} s ` +
      `(${fmt(total / Math.max(0.001, run.seconds))} rows/s, batches of 1,000; first half ${fmt(run.firstHalfRate)} rows/s, second ${fmt(run.secondHalfRate)}), ${left} left; /verify on that instance p99 ${fmtMs(before.p99)} ms before ` +
      `(${fmt(before.reqPerSec)} req/s), ${fmtMs(during.p99)} ms during (${fmt(during.reqPerSec)} req/s, max ${fmtMs(during.max)} ms)`)
    o.check(`cleanup round ${round}: every expired row deleted`, left === 0, `${left} of ${fmt(total)} left`)
    o.check(`cleanup round ${round}: /verify answered 204 meanwhile`, t.result.errors + t.result.unexpected === 0,
      `${fmt(t.result.requests)} requests, ${t.result.errors} errors, ${t.result.unexpected} unexpected`)
  }

  async stop(): Promise<void> {
    if (this.userId) await this.o.bulk.deleteUsers([this.userId])
  }
}

/** A timeline run that ends when `done()` turns true (checked every 200 ms), at most `maxSeconds`. */
async function timelineUntil(service: Service, tokens: readonly string[], connections: number, done: () => boolean, maxSeconds: number) {
  const run = timeline(service.url, service.pid, verifySource(tokens), connections, maxSeconds)
  const watcher = setInterval(() => {
    if (done()) {
      clearInterval(watcher)
      stopCurrentLoad()
    }
  }, 200)
  try {
    return await run
  } finally {
    clearInterval(watcher)
  }
}

async function verifyStatus(url: string, token: string): Promise<number> {
  const response = await fetch(`${url}${API}/verify`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) })
  await response.arrayBuffer()
  return response.status
}

export function logoutAllSection(runs: readonly LogoutAllRun[]): string {
  return [
    '## logout with all_devices',
    '',
    'POST /logout `{"all_devices":true}` for a user with N sessions made by SQL (again for each repetition), while /verify of other users ' +
      'runs: its p99 before the logout, and from the logout\'s start until 500 ms after its answer (the notifications of the deleted sessions arrive then).',
    '',
    '| round | # | sessions | logout ms | status | other token after | rows left | /verify p99 before | p99 during | max during | req/s before / during |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.map((r) => `| ${r.round} | ${r.repetition} | ${fmt(r.sessions)} | ${fmt(r.ms)} | ${r.status} | ${r.otherAfter} | ${r.rowsAfter} | ` +
      `${fmtMs(r.before.p99)} | ${fmtMs(r.during.p99)} | ${fmtMs(r.during.max)} | ${fmt(r.before.reqPerSec)} / ${fmt(r.during.reqPerSec)} |`)
  ].join('\n')
}

export function cleanupSection(runs: readonly CleanupRun[], intervalSeconds: number): string {
  return [
    '## Clean-up of expired sessions',
    '',
    `N expired sessions made by SQL; a second instance with SESSION_CLEANUP_INTERVAL=${intervalSeconds}s deletes them (its housekeeping timer, ` +
      'batches of 1,000 rows a statement), while /verify of the hot sessions goes to that instance. Duration: from the first row gone to the last (polled every 500 ms).',
    '',
    '| round | rows | seconds | rows/s | first / second half rows/s | left | /verify p99 before | req/s before | p99 during | max during | req/s during |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.map((r) => `| ${r.round} | ${fmt(r.rows)} | ${r.seconds.toFixed(1)} | ${fmt(r.rows / Math.max(0.001, r.seconds))} | ${fmt(r.firstHalfRate)} / ${fmt(r.secondHalfRate)} | ${r.rowsLeft} | ` +
      `${fmtMs(r.before.p99)} | ${fmt(r.before.reqPerSec)} | ${fmtMs(r.during.p99)} | ${fmtMs(r.during.max)} | ${fmt(r.during.reqPerSec)} |`)
  ].join('\n')
}
