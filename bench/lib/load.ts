// Drives load with autocannon. Every request comes from an OpSource, called just before the
// request is written, so each request can carry its own token or session; the response is handed
// back to the op (a refresh stores its rotated token pair, a login its new session). Latency is
// measured here per request (hrtime, sub-millisecond), overall and per kind of op.
import { readdirSync, readFileSync } from 'node:fs'
import autocannon from 'autocannon'

export interface Op {
  readonly kind: string
  readonly method: 'GET' | 'POST'
  readonly path: string
  readonly headers?: Record<string, string>
  readonly body?: string
  /** The status this request should get; anything else is counted as unexpected. */
  readonly expect: number
  /**
   * With the expected status, whether the body is the right answer too (introspect: `active`
   * true); a body it refuses counts as unexpected, under the status `<code> (unexpected body)`.
   */
  readonly accepts?: (body: string) => boolean
  /** Sees the response (e.g. to keep a rotated refresh token). Not called if none came. */
  done?(status: number, body: string): void
  /** Called when the run ended without a response to this request (timeout, reset). */
  lost?(): void
}

export type OpSource = () => Op

export interface LoadOptions {
  readonly url: string
  readonly connections: number
  /** Seconds to run; ignored when `amount` is set. */
  readonly duration?: number
  /** Exactly this many requests, then stop. */
  readonly amount?: number
  readonly next: OpSource
  /** Called for every response, after op.done (the soak's interval statistics). */
  readonly onResponse?: (op: Op, status: number, latencyMs: number) => void
  readonly onError?: (error: Error) => void
  /** Per-request timeout in seconds (autocannon's, default 10). */
  readonly timeout?: number
  /** Process group of the server (a detached child): its CPU time is measured over the run. */
  readonly serverGroup?: number
}

export interface KindStats {
  count: number
  p50: number
  p99: number
  unexpected: number
  status: Record<string, number>
}

export interface LoadResult {
  /** Responses received. */
  readonly requests: number
  readonly elapsedSec: number
  readonly reqPerSec: number
  /** Latency in milliseconds over every response. */
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  /** Connection errors and timeouts after the warm-up (`errors` includes `timeouts`). */
  readonly errors: number
  readonly timeouts: number
  /** Requests sent that never got an answer (cut off at the end or by an error). */
  readonly lost: number
  readonly status: Record<string, number>
  readonly non2xx: number
  readonly status5xx: number
  /** Non-2xx answers the op said to expect (none of the scenarios expects any today). */
  readonly expectedNon2xx: number
  /** Answers other than the op's expected status. */
  readonly unexpected: number
  readonly byKind: Record<string, KindStats>
  /** CPU used during the run, in cores (1.0 = one core busy all the time): the server's process
   *  group (all its processes and threads) and this load generator. NaN where unavailable. */
  readonly serverCpu: number
  readonly clientCpu: number
  /** All `postgres` processes on the machine (other users of the server included). */
  readonly postgresCpu: number
  /** Date.now() when the measured part began and ended (after the warm-up). */
  readonly measuredFrom: number
  readonly measuredTo: number
}

const CLOCK_TICKS = 100 // USER_HZ on Linux

interface ProcessCpu {
  readonly group: number
  readonly comm: string
  readonly ticks: number
}

/** Every process's user+system CPU ticks, from /proc (Linux); empty elsewhere. */
export function cpuSnapshot(): Map<number, ProcessCpu> {
  const snapshot = new Map<number, ProcessCpu>()
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return snapshot
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue // exited meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    snapshot.set(Number(entry), {
      comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      group: Number(fields[2]),
      ticks: Number(fields[11]) + Number(fields[12])
    })
  }
  return snapshot
}

/**
 * CPU seconds used between two snapshots by the processes that match: processes that started
 * meanwhile count in full, processes that ended meanwhile are missed (never negative).
 */
export function cpuBetween(before: Map<number, ProcessCpu>, after: Map<number, ProcessCpu>, match: (p: ProcessCpu) => boolean): number {
  if (after.size === 0) return Number.NaN
  let ticks = 0
  for (const [pid, now] of after) {
    if (!match(now)) continue
    const then = before.get(pid)
    ticks += then && then.comm === now.comm ? Math.max(0, now.ticks - then.ticks) : now.ticks
  }
  return ticks / CLOCK_TICKS
}

/** Latencies in a growable Float64Array; percentiles by sorting once at the end. */
export class LatencyRecorder {
  private values = new Float64Array(1024)
  private length = 0

  add(ms: number): void {
    if (this.length === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2)
      bigger.set(this.values)
      this.values = bigger
    }
    this.values[this.length++] = ms
  }

  get count(): number {
    return this.length
  }

  /** Percentiles (0-100) of what was recorded; NaN when empty. */
  percentiles(...ps: number[]): number[] {
    if (this.length === 0) return ps.map(() => Number.NaN)
    const sorted = this.values.slice(0, this.length).sort()
    return ps.map((p) => sorted[Math.min(this.length - 1, Math.max(0, Math.ceil((p / 100) * this.length) - 1))])
  }

  reset(): void {
    this.length = 0
  }
}

interface Context {
  op?: Op
  started?: bigint
  /** Sent during the warm-up: its response is not counted. */
  warm?: boolean
}

let current: autocannon.Instance | undefined

/** Stops the run in progress (SIGINT). */
export function stopCurrentLoad(): void {
  current?.stop()
}

/** What happened during a warm-up phase (not part of the result, but errors there still count). */
export interface WarmupStats {
  requests: number
  errors: number
  unexpected: number
  status5xx: number
}

/**
 * One autocannon run. The warm-up is the first part of the same run (`warmup` seconds, or the
 * first `warmupAmount` requests), so the measured part runs on connections that are already
 * open; only requests sent after the warm-up are counted.
 */
export async function runLoad(options: LoadOptions & { warmup?: number, warmupAmount?: number }): Promise<LoadResult & { warmupStats: WarmupStats }> {
  const { url, connections } = options
  const all = new LatencyRecorder()
  const kinds = new Map<string, { latency: LatencyRecorder, stats: KindStats }>()
  const status: Record<string, number> = {}
  const warmupStats: WarmupStats = { requests: 0, errors: 0, unexpected: 0, status5xx: 0 }
  let responses = 0
  let errors = 0
  let timeouts = 0
  // autocannon reports its duration in whole sampling intervals; time the measured part here:
  // from the first request written after the warm-up to the last response read.
  let firstSent: bigint | undefined
  let lastAnswered: bigint | undefined
  let expectedNon2xx = 0
  let unexpected = 0
  const inFlight = new Set<Op>()
  const warmupMs = (options.warmup ?? 0) * 1000
  const warmupAmount = options.amount !== undefined ? Math.min(options.warmupAmount ?? 0, options.amount) : 0
  let sent = 0
  let measuring = warmupMs === 0 && warmupAmount === 0
  let runStarted: number | undefined
  let cpuStart: Map<number, ProcessCpu> | undefined
  let clientCpuStart: NodeJS.CpuUsage | undefined
  let wallStart: bigint | undefined
  let measuredFrom = 0
  const startMeasuring = () => {
    measuring = true
    measuredFrom = Date.now()
    cpuStart = cpuSnapshot()
    clientCpuStart = process.cpuUsage()
    wallStart = process.hrtime.bigint()
  }

  const kindOf = (kind: string) => {
    let entry = kinds.get(kind)
    if (!entry) {
      entry = { latency: new LatencyRecorder(), stats: { count: 0, p50: 0, p99: 0, unexpected: 0, status: {} } }
      kinds.set(kind, entry)
    }
    return entry
  }

  const request: autocannon.Request = {
    setupRequest: (req: autocannon.Request, context: Context) => {
      runStarted ??= Date.now()
      if (!measuring && (warmupAmount > 0 ? sent >= warmupAmount : Date.now() - runStarted >= warmupMs)) startMeasuring()
      sent++
      const op = options.next()
      inFlight.add(op)
      context.op = op
      context.warm = !measuring
      context.started = process.hrtime.bigint()
      if (measuring) firstSent ??= context.started
      const headers: Record<string, string> = { ...op.headers }
      if (op.body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json'
      return { ...req, method: op.method, path: op.path, headers, body: op.body ?? '' }
    },
    onResponse: (code: number, body: string, context: Context) => {
      const op = context.op
      if (!op) return
      context.op = undefined
      inFlight.delete(op)
      const wrongBody = code === op.expect && op.accepts !== undefined && !op.accepts(body)
      if (context.warm) {
        warmupStats.requests++
        if (code !== op.expect || wrongBody) warmupStats.unexpected++
        if (code >= 500) warmupStats.status5xx++
        op.done?.(code, body)
        return
      }
      lastAnswered = process.hrtime.bigint()
      const ms = Number(lastAnswered - (context.started ?? 0n)) / 1e6
      responses++
      all.add(ms)
      const key = wrongBody ? `${code} (unexpected body)` : String(code)
      status[key] = (status[key] ?? 0) + 1
      const entry = kindOf(op.kind)
      entry.latency.add(ms)
      entry.stats.count++
      entry.stats.status[key] = (entry.stats.status[key] ?? 0) + 1
      if (code !== op.expect || wrongBody) {
        unexpected++
        entry.stats.unexpected++
      } else if (code < 200 || code > 299) {
        expectedNon2xx++
      }
      op.done?.(code, body)
      options.onResponse?.(op, code, ms)
    }
  } as autocannon.Request

  const amount = options.amount
  let finish!: (err: Error | null, result: autocannon.Result) => void
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (err, result) => (err ? reject(err) : resolve(result))
  })
  const totalDuration = (options.duration ?? 10) + warmupMs / 1000
  const instance = autocannon({
    url,
    connections: amount !== undefined ? Math.max(1, Math.min(connections, amount)) : connections,
    pipelining: 1,
    ...(amount !== undefined ? { amount } : { duration: totalDuration }),
    timeout: options.timeout ?? 10,
    // A run of a fixed amount ends at the first sampling tick after its last response.
    sampleInt: amount !== undefined ? 50 : 1000,
    requests: [request]
  }, (err, result) => finish(err, result))
  current = instance
  if (measuring) startMeasuring()
  instance.on('reqError', (error: Error) => {
    if (!measuring) {
      warmupStats.errors++
      return
    }
    errors++
    if (error.message === 'request timed out') timeouts++
    options.onError?.(error)
  })
  // autocannon stops on its own; this only guards against a run that never ends.
  const guardMs = amount !== undefined ? 120_000 + amount * 10 : (totalDuration + 60) * 1000
  const guard = setTimeout(() => instance.stop(), guardMs)
  try {
    await finished
  } finally {
    clearTimeout(guard)
    current = undefined
  }

  if (!measuring) startMeasuring() // the whole run was warm-up (too short): empty result
  const wallSec = Number(process.hrtime.bigint() - wallStart!) / 1e9
  const cpuEnd = cpuSnapshot()
  const group = options.serverGroup
  const serverCpu = group === undefined ? Number.NaN : cpuBetween(cpuStart!, cpuEnd, (p) => p.group === group) / wallSec
  const postgresCpu = cpuBetween(cpuStart!, cpuEnd, (p) => p.comm === 'postgres') / wallSec
  const clientUsage = process.cpuUsage(clientCpuStart)
  const clientCpu = (clientUsage.user + clientUsage.system) / 1e6 / wallSec
  for (const op of inFlight) op.lost?.()

  const [p50, p90, p99, max] = all.percentiles(50, 90, 99, 100)
  const byKind: Record<string, KindStats> = {}
  for (const [kind, entry] of kinds) {
    const [kp50, kp99] = entry.latency.percentiles(50, 99)
    byKind[kind] = { ...entry.stats, p50: kp50, p99: kp99 }
  }
  const non2xx = Object.entries(status).filter(([code]) => !code.startsWith('2')).reduce((sum, [, n]) => sum + n, 0)
  const status5xx = Object.entries(status).filter(([code]) => code.startsWith('5')).reduce((sum, [, n]) => sum + n, 0)
  const elapsedSec = firstSent !== undefined && lastAnswered !== undefined ? Number(lastAnswered - firstSent) / 1e9 : 0
  return {
    requests: responses,
    elapsedSec,
    reqPerSec: elapsedSec > 0 ? responses / elapsedSec : 0,
    p50,
    p90,
    p99,
    max,
    errors,
    timeouts,
    lost: inFlight.size,
    status,
    non2xx,
    status5xx,
    expectedNon2xx,
    unexpected,
    byKind,
    serverCpu,
    clientCpu,
    postgresCpu,
    measuredFrom,
    measuredTo: Date.now(),
    warmupStats
  }
}
