// `npm run soak`: the mixed workload (90 % verify, 5 % refresh, 3 % login, 2 % logout) against one
// service instance for SOAK_DURATION, sampling every SOAK_INTERVAL: the server's RSS (from
// /proc/<pid>/status), its heap and RSS as its own /metrics (on the internal port) reports them,
// errors and p99 latency of the interval. Fails (exit 1) on any error, 5xx or unexpected status, or when RSS grows more
// than SOAK_MAX_RSS_GROWTH over the second half of the run. Options: see bench/README.md.
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { installCleanupHandlers, ROOT, stopAllChildren } from './lib/children.js'
import { checkAccessTokens, login, mapLimit, register, type Session, type User } from './lib/http.js'
import { cpuBetween, cpuSnapshot, LatencyRecorder, runLoad, stopCurrentLoad } from './lib/load.js'
import { formatSeconds, OptionError, OptionSource, readFlags } from './lib/options.js'
import { cpuDescription, gitCommit, loadAverage, median, log, reportFailures } from './lib/report.js'
import { ALGORITHMS, DEFAULT_ALGORITHM, generateKey, migrate, startService, type Algorithm } from './lib/service.js'
import { BenchDatabase } from './lib/db.js'
import { mixedSource, Workload } from './lib/workload.js'

interface Sample {
  /** Seconds since the load started. */
  t: number
  /** VmRSS of the server process, bytes. */
  rss: number
  /** From the service's /metrics: nodejs_heap_size_used_bytes, process_resident_memory_bytes. */
  heapUsed: number
  metricsRss: number
  /** This interval: responses, req/s, p50/p99 ms, errors (connection errors, timeouts), 5xx, unexpected. */
  requests: number
  reqPerSec: number
  p50: number
  p99: number
  errors: number
  status5xx: number
  unexpected: number
  /** CPU cores the service used over the interval, and the machine's 1-minute load average. */
  serverCpu: number
  load: number
}

interface Growth {
  readonly kind: 'percent' | 'bytes'
  readonly value: number
}

function parseGrowth(text: string): Growth {
  const match = /^(\d+(?:\.\d+)?)\s*(%|mb|mib|kb|kib|b)?$/i.exec(text.trim())
  if (!match) throw new OptionError(`SOAK_MAX_RSS_GROWTH must be a percentage (10%) or a size (64MB) (got "${text}")`)
  const n = Number(match[1])
  const unit = (match[2] ?? '%').toLowerCase()
  if (unit === '%') return { kind: 'percent', value: n }
  const factor = unit.startsWith('m') ? 1024 * 1024 : unit.startsWith('k') ? 1024 : 1
  return { kind: 'bytes', value: n * factor }
}

const mib = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : 'n/a')
const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')

function readVmRss(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return match ? Number(match[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

async function readMetrics(url: string): Promise<{ heapUsed: number, rss: number }> {
  try {
    const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })
    const text = await response.text()
    const value = (name: string) => {
      const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'm').exec(text)
      return match ? Number(match[1]) : Number.NaN
    }
    return { heapUsed: value('nodejs_heap_size_used_bytes'), rss: value('process_resident_memory_bytes') }
  } catch {
    return { heapUsed: Number.NaN, rss: Number.NaN }
  }
}

function mean(values: number[]): number {
  const finite = values.filter(Number.isFinite)
  return finite.length === 0 ? Number.NaN : finite.reduce((a, b) => a + b, 0) / finite.length
}

/** Least-squares slope of y over x (per unit of x). */
function slope(points: Array<[number, number]>): number {
  const finite = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  if (finite.length < 2) return Number.NaN
  const mx = mean(finite.map(([x]) => x))
  const my = mean(finite.map(([, y]) => y))
  let num = 0
  let den = 0
  for (const [x, y] of finite) {
    num += (x - mx) * (y - my)
    den += (x - mx) ** 2
  }
  return den === 0 ? Number.NaN : num / den
}

async function main(): Promise<number> {
  let source: OptionSource
  let duration: number
  let interval: number
  let growthBound: Growth
  let algorithm: Algorithm
  try {
    source = new OptionSource({ ...process.env, ...readFlags(process.argv.slice(2), 'SOAK') })
    duration = source.seconds('SOAK_DURATION', 600)
    if (duration < 2) throw new OptionError('SOAK_DURATION must be at least 2 s')
    interval = source.seconds('SOAK_INTERVAL', Math.min(10, Math.max(1, duration / 6)))
    growthBound = parseGrowth(source.string('SOAK_MAX_RSS_GROWTH', '10%'))
    algorithm = source.string('SOAK_ALG', process.env.BENCH_ALG || DEFAULT_ALGORITHM) as Algorithm
    if (!ALGORITHMS.includes(algorithm)) throw new OptionError(`SOAK_ALG must be one of ${ALGORITHMS.join(', ')}`)
  } catch (err) {
    if (err instanceof OptionError) {
      console.error(err.message)
      return 2
    }
    throw err
  }
  const connections = source.int('SOAK_CONNECTIONS', 50, 1)
  const sessionCount = source.int('SOAK_SESSIONS', 1000, 1)
  const userCount = source.int('SOAK_USERS', 8, 1)
  const nodeArgs = source.optionalString('SOAK_NODE_ARGS')?.split(/\s+/) ?? []
  const databaseUrl = process.env.DATABASE_URL?.trim() || undefined
  const resultsDir = path.resolve(ROOT, source.string('SOAK_RESULTS_DIR', 'bench/results'))
  installCleanupHandlers(stopCurrentLoad)

  const engine = databaseUrl ? 'postgres' : 'pglite'
  log(`soak: mixed workload on ${engine}, ${algorithm}, ${connections} connections, ${formatSeconds(duration)}, ` +
    `sample every ${interval} s, RSS bound over the second half: ${growthBound.kind === 'percent' ? `${growthBound.value}%` : mib(growthBound.value)}`)

  const failures: string[] = []
  const samples: Sample[] = []
  const users: User[] = []
  const db = databaseUrl ? new BenchDatabase(databaseUrl) : undefined
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
  let exitCode = 0
  try {
    if (databaseUrl) log(`migrate: ${(await migrate(databaseUrl)).split('\n').at(-1)}`)
    const service = await startService({ key: generateKey(algorithm), databaseUrl, nodeArgs })
    log(`service ${service.url}, pid ${service.pid}`)

    for (let i = 0; i < userCount; i++) {
      users.push({ email: `soak-${runId}-${i}@example.com`, password: `pw-${randomBytes(12).toString('base64url')}` })
    }
    const workload = new Workload(users)
    const setupStarted = Date.now()
    const sessions: Session[] = await mapLimit(users, 8, (user) => register(service.url, user))
    await mapLimit(Array.from({ length: Math.max(0, sessionCount - userCount) }, (_, i) => users[i % users.length]), 8,
      async (user) => void sessions.push(await login(service.url, user)))
    const hot = Math.min(sessions.length, Math.max(2 * connections + 10, Math.floor(sessions.length * 0.8)))
    sessions.forEach((s, i) => (i < hot ? workload.addHot(s) : workload.addSpare(s)))
    log(`setup: ${sessions.length} sessions in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s`)

    const idle = await readMetrics(service.internalUrl)
    const idleRss = readVmRss(service.pid)
    log(`before load: RSS ${mib(idleRss)}, heap used ${mib(idle.heapUsed)}`)

    // Interval statistics, fed by every response.
    const latencies = new LatencyRecorder()
    let requests = 0
    let errors = 0
    let status5xx = 0
    let unexpected = 0
    const started = Date.now()
    let lastSample = started
    let lastCpu = cpuSnapshot()
    const sample = async () => {
      const now = Date.now()
      const cpu = cpuSnapshot()
      const serverCpu = cpuBetween(lastCpu, cpu, (p) => p.group === service.pid) / ((now - lastSample) / 1000)
      lastCpu = cpu
      const [p50, p99] = latencies.percentiles(50, 99)
      const s: Sample = {
        t: (now - started) / 1000,
        rss: readVmRss(service.pid),
        ...(await readMetrics(service.internalUrl).then((m) => ({ heapUsed: m.heapUsed, metricsRss: m.rss }))),
        requests,
        reqPerSec: requests / ((now - lastSample) / 1000),
        p50,
        p99,
        errors,
        status5xx,
        unexpected,
        serverCpu,
        load: loadAverage()
      }
      lastSample = now
      latencies.reset()
      requests = errors = status5xx = unexpected = 0
      samples.push(s)
      log(`${`${Math.round(s.t)}s`.padStart(6)}  RSS ${mib(s.rss).padStart(10)}  heap ${mib(s.heapUsed).padStart(10)}  ` +
        `${fmt(s.reqPerSec).padStart(6)} req/s  p50 ${ms(s.p50).padStart(7)} ms  p99 ${ms(s.p99).padStart(7)} ms  ` +
        `errors ${s.errors}  5xx ${s.status5xx}  unexpected ${s.unexpected}  server CPU ${s.serverCpu.toFixed(2)}  load ${s.load.toFixed(1)}`)
    }
    let sampling = Promise.resolve()
    const timer = setInterval(() => {
      sampling = sampling.then(sample)
    }, interval * 1000)

    const result = await runLoad({
      url: service.url,
      connections,
      duration,
      next: mixedSource(workload),
      onResponse: (op, status, latency) => {
        requests++
        latencies.add(latency)
        if (status >= 500) status5xx++
        if (status !== op.expect) unexpected++
      },
      onError: () => errors++
    })
    clearInterval(timer)
    await sampling
    if (requests > 0) await sample() // the tail since the last sample
    await workload.settleLost(service.url)

    // Every session the soak logged out must stay dead.
    const ended = workload.loggedOut.slice(-5_000).map((s) => s.access)
    const dead = await checkAccessTokens(service.url, ended, 401)
    if (dead.matching !== dead.checked) {
      failures.push(`${dead.checked - dead.matching} of ${dead.checked} logged-out sessions still accepted: ${JSON.stringify(dead.others)}`)
    }

    // --- verdict ----------------------------------------------------------------------------------
    const totalErrors = result.errors
    if (totalErrors > 0) failures.push(`${totalErrors} connection errors/timeouts (${result.timeouts} timeouts)`)
    if (result.status5xx > 0) failures.push(`${result.status5xx} 5xx responses`)
    if (result.unexpected > 0) {
      failures.push(`${result.unexpected} unexpected statuses: ${Object.entries(result.status).map(([c, n]) => `${c}×${n}`).join(' ')}`)
    }

    const secondHalf = samples.filter((s) => s.t >= duration / 2)
    const third = Math.max(1, Math.ceil(secondHalf.length / 3))
    const rssEarly = mean(secondHalf.slice(0, third).map((s) => s.rss))
    const rssLate = mean(secondHalf.slice(-third).map((s) => s.rss))
    const growth = rssLate - rssEarly
    const allowed = growthBound.kind === 'percent' ? (rssEarly * growthBound.value) / 100 : growthBound.value
    const growthOk = !(growth > allowed)
    if (!growthOk) {
      failures.push(`RSS grew ${mib(growth)} over the second half (${mib(rssEarly)} -> ${mib(rssLate)}), more than the bound of ${mib(allowed)}`)
    }
    const firstHalf = samples.filter((s) => s.t < duration / 2)
    const heapFloorFirst = Math.min(...firstHalf.map((s) => s.heapUsed).filter(Number.isFinite))
    const heapFloorSecond = Math.min(...secondHalf.map((s) => s.heapUsed).filter(Number.isFinite))
    const p99Slope = slope(samples.map((s) => [s.t / 60, s.p99]))

    const first = samples[0]
    const last = samples.at(-1)
    log('')
    log(`requests: ${fmt(result.requests)} in ${result.elapsedSec.toFixed(0)} s (${fmt(result.reqPerSec)} req/s), ` +
      `p50 ${ms(result.p50)} ms, p99 ${ms(result.p99)} ms; statuses ${Object.entries(result.status).map(([c, n]) => `${c}×${n}`).join(' ')}`)
    log(`RSS:  idle ${mib(idleRss)}, first sample ${mib(first?.rss ?? NaN)}, last ${mib(last?.rss ?? NaN)}; ` +
      `second half ${mib(rssEarly)} -> ${mib(rssLate)} (${growth >= 0 ? '+' : ''}${mib(growth)}, bound ${mib(allowed)}) ${growthOk ? 'ok' : 'EXCEEDED'}`)
    log(`heap: idle ${mib(idle.heapUsed)}, first sample ${mib(first?.heapUsed ?? NaN)}, last ${mib(last?.heapUsed ?? NaN)}; ` +
      `lowest in first half ${mib(heapFloorFirst)}, in second half ${mib(heapFloorSecond)} (heap after GC is not observable from outside; the lowest sample approximates it)`)
    log(`latency trend: p99 ${ms(first?.p99 ?? NaN)} ms in the first interval, ${ms(last?.p99 ?? NaN)} ms in the last, ` +
      `median of intervals ${ms(median(samples.map((s) => s.p99)))} ms, slope ${Number.isFinite(p99Slope) ? `${p99Slope >= 0 ? '+' : ''}${p99Slope.toFixed(2)} ms/min` : 'n/a'}`)
    log(`errors: ${totalErrors}, 5xx: ${result.status5xx}, unexpected statuses: ${result.unexpected}; ` +
      `${workload.loggedOut.length} sessions logged out (${dead.matching}/${dead.checked} checked stay rejected), ${workload.logins} logins`)

    mkdirSync(resultsDir, { recursive: true })
    const file = path.join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-soak-${engine}.json`)
    writeFileSync(file, `${JSON.stringify({
      meta: {
        startedAt: new Date(started).toISOString(), commit: gitCommit(ROOT), node: process.version, cpu: cpuDescription(),
        load: loadAverage(), engine, algorithm, connections, duration, interval, sessions: sessions.length
      },
      idle: { rss: idleRss, heapUsed: idle.heapUsed },
      samples,
      summary: {
        requests: result.requests, reqPerSec: result.reqPerSec, p50: result.p50, p99: result.p99, status: result.status,
        errors: totalErrors, rssSecondHalf: { early: rssEarly, late: rssLate, growth, allowed }, heapFloorFirst, heapFloorSecond, p99SlopeMsPerMin: p99Slope
      },
      failures
    }, null, 2)}\n`)
    log(`samples: ${path.relative(ROOT, file)}`)
  } catch (err) {
    failures.push(`soak aborted: ${(err as Error).stack ?? String(err)}`)
  } finally {
    if (db) {
      const ids = users.map((u) => u.id).filter((id): id is string => Boolean(id))
      if (ids.length > 0) await db.deleteUsers(ids).catch(() => {})
      await db.close().catch(() => {})
    }
    await stopAllChildren()
  }

  if (!reportFailures(failures)) {
    exitCode = 1
  } else {
    log('soak passed: no errors, no 5xx, RSS within bound')
  }
  return exitCode
}

process.exitCode = await main()
