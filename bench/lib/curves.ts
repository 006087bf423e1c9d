// The `curves` scenario (bench/README.md): GET /verify over N distinct live tokens, round-robin,
// for each N of BENCH_CURVES_POINTS, against the bare @fastify/jwt baseline over the same tokens
// in the same round; and the memory each cached entry costs. On PostgreSQL the N sessions are
// made by SQL for a user of the bench's own and their tokens signed by the bench with the
// service's key (bench/lib/bulk.ts); on PGlite the bench cannot reach the service's database, so
// the points are capped at the hot sessions made by login and the memory part is skipped.
//
// Cost per request is CPU: the server process group's CPU over the measured run divided by its
// requests (µs/request), which other work on a shared 2-core machine moves less than req/s; the
// target is the service's cost at most 1.10 × the bare verify's at the same N. On PostgreSQL the
// CPU of every postgres process per request is given beside it (other users of the server count).
import type { BulkSessions } from './bulk.js'
import { accessTokenSigner, HEAP_PROBE_ARGS, readHeap, verifySource, type Heap } from './bulk.js'
import { runLoad, type LoadResult } from './load.js'
import { fmtMs, log } from './report.js'
import type { ScaleContext } from './scale.js'
import { startService } from './service.js'

/** The service's CPU per request at most this many times bare @fastify/jwt's, at every N. */
export const CURVE_COST_TARGET = 1.1

/** The bench's context the curves use (ScaleContext, scale.ts), and their own options. */
export interface CurvesOptions extends Pick<ScaleContext, 'key' | 'databaseUrl' | 'runId' | 'connections' | 'warmup' | 'duration' | 'service' | 'jwt' | 'hot' | 'check'> {
  readonly bulk: BulkSessions | undefined
  readonly points: readonly number[]
  /** Entries put in each cache for the memory measurement (0: skipped). */
  readonly memoryEntries: number
  /** Points up to this N get one pass over every token before the timed run (the caches' steady state). */
  readonly warmPassMax: number
}

interface Figures {
  readonly reqPerSec: number
  readonly p99: number
  readonly requests: number
  readonly errors: number
  readonly unexpected: number
  /** Server process group CPU per request, µs. */
  readonly cpuUs: number
  /** Every postgres process's CPU per request, µs. */
  readonly postgresUs: number
}

export interface CurvePoint {
  readonly round: number
  readonly n: number
  readonly service: Figures
  readonly bare: Figures | null
  /** service cpuUs ÷ bare cpuUs. */
  readonly costRatio: number | null
  readonly rateRatio: number | null
  readonly warmPass: boolean
  readonly setupSeconds: number
}

export interface CacheMemory {
  readonly entries: number
  readonly both: { readonly before: Heap, readonly after: Heap }
  readonly sessionOnly: { readonly before: Heap, readonly after: Heap }
  /** Bytes of heap per entry (after a full GC). */
  readonly perTokenEntry: number
  readonly perSessionEntry: number
}

const figures = (r: LoadResult): Figures => ({
  reqPerSec: r.reqPerSec, p99: r.p99, requests: r.requests, errors: r.errors, unexpected: r.unexpected,
  cpuUs: (r.serverCpu / r.reqPerSec) * 1e6, postgresUs: (r.postgresCpu / r.reqPerSec) * 1e6
})
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const envInt = (name: string, fallback: number) => Number(process.env[name] || fallback)

export class CurvesScenario {
  readonly points: CurvePoint[] = []
  memory: CacheMemory | undefined
  readonly notes: string[] = []
  private userId: string | undefined
  private sign: ((userId: string, ids: readonly string[]) => string[]) | undefined

  constructor(private readonly o: CurvesOptions) {}

  /** N live tokens: bulk sessions on PostgreSQL, the hot sessions on PGlite (capped). */
  private async tokens(n: number): Promise<{ tokens: string[], made: boolean }> {
    const { bulk } = this.o
    if (!bulk) return { tokens: this.o.hot.slice(0, n).map((s) => s.access), made: false }
    this.userId ??= await bulk.createUser(`bench-${this.o.runId}-curves@example.com`)
    this.sign ??= await accessTokenSigner(this.o.key, this.o.service.url)
    const ids = await bulk.insertSessions(this.userId, n, new Date(Date.now() + 86_400_000), true)
    return { tokens: this.sign(this.userId, ids), made: true }
  }

  async round(round: number): Promise<void> {
    const o = this.o
    const points = o.bulk ? o.points : [...new Set(o.points.map((n) => Math.min(n, o.hot.length)))]
    if (!o.bulk && round === 1) {
      this.notes.push(`PGlite: the bench cannot write the service's database, so N is capped at the ${o.hot.length} hot sessions made by login ` +
        `(points ${points.join(', ')}); the memory part needs PostgreSQL`)
    }
    for (const n of points) {
      const started = Date.now()
      const { tokens, made } = await this.tokens(n)
      const setupSeconds = (Date.now() - started) / 1000
      const position = { next: 0 }
      const warmPass = made && n <= o.warmPassMax
      if (warmPass) {
        // One pass over every token: each is verified and its session looked up once, as a
        // gateway's steady traffic would have done; the timed run continues the rotation.
        await runLoad({ url: o.service.url, connections: o.connections, amount: n, next: verifySource(tokens, position) })
      }
      const serviceRun = () => runLoad({
        url: o.service.url, connections: o.connections, warmup: o.warmup, duration: o.duration, next: verifySource(tokens, position), serverGroup: o.service.pid
      })
      const bareRun = () => o.jwt
        ? runLoad({ url: o.jwt.url, connections: o.connections, warmup: o.warmup, duration: o.duration, next: verifySource(tokens, { next: 0 }, '/verify'), serverGroup: o.jwt.child.pid })
        : Promise.resolve(undefined)
      let s: LoadResult
      let b: LoadResult | undefined
      if (round % 2 === 1) {
        s = await serviceRun()
        b = await bareRun()
      } else {
        b = await bareRun()
        s = await serviceRun()
      }
      if (made && this.userId) await o.bulk!.removeQuietly(this.userId)
      const service = figures(s)
      const bare = b ? figures(b) : null
      const point: CurvePoint = {
        round, n, service, bare, warmPass, setupSeconds,
        costRatio: bare ? service.cpuUs / bare.cpuUs : null,
        rateRatio: bare ? service.reqPerSec / bare.reqPerSec : null
      }
      this.points.push(point)
      log(`  curves N=${fmt(n).padStart(9)}  service ${fmt(service.reqPerSec)} req/s p99 ${fmtMs(service.p99)} ms ${service.cpuUs.toFixed(1)} µs CPU/req` +
        `${o.databaseUrl ? ` (+ postgres ${service.postgresUs.toFixed(1)})` : ''}` +
        (bare ? `; bare jwt ${fmt(bare.reqPerSec)} req/s p99 ${fmtMs(bare.p99)} ms ${bare.cpuUs.toFixed(1)} µs/req; cost ${point.costRatio!.toFixed(2)}× ` +
          `(target ≤ ${CURVE_COST_TARGET}: ${point.costRatio! <= CURVE_COST_TARGET ? 'met' : 'not met'})` : '; no bare baseline (BENCH_BASELINES=0)') +
        `; setup ${setupSeconds.toFixed(1)} s${warmPass ? ', one warm pass' : ''}`)
      o.check(`curves round ${round} N=${n}: every /verify answered 204`, s.errors + s.unexpected === 0 && s.requests > 0 && (!b || b.errors + b.unexpected === 0),
        `service ${fmt(s.requests)} requests, ${s.errors} errors, ${s.unexpected} unexpected` + (b ? `; bare ${fmt(b.requests)}, ${b.errors} errors, ${b.unexpected} unexpected` : ''))
    }
    if (round === 1 && o.bulk && o.memoryEntries > 0) await this.measureMemory()
  }

  /**
   * Heap per cached entry: a service with both caches big enough, and one with the
   * verified-token cache off, each filled with `memoryEntries` sessions' tokens; heapUsed after a
   * full GC before and after the fill, over the entries.
   */
  private async measureMemory(): Promise<void> {
    const o = this.o
    const m = o.memoryEntries
    const warm = Math.min(2_000, Math.floor(m / 10))
    const { tokens } = await this.tokens(m)
    const issuer = process.env.JWT_ISSUER?.trim() || o.service.url
    const measure = async (tokenCache: number) => {
      const service = await startService({
        key: o.key, databaseUrl: o.databaseUrl, nodeArgs: HEAP_PROBE_ARGS,
        env: { SESSION_CLEANUP_INTERVAL: '0', JWT_ISSUER: issuer, TOKEN_CACHE_SIZE: String(tokenCache), SESSION_CACHE_SIZE: String(m + 1_000), SESSION_CACHE_TTL: '3600' }
      })
      try {
        const position = { next: 0 }
        await runLoad({ url: service.url, connections: o.connections, amount: warm, next: verifySource(tokens, position) })
        const before = await readHeap(service)
        const fill = await runLoad({ url: service.url, connections: o.connections, amount: m - warm, next: verifySource(tokens, position) })
        const after = await readHeap(service)
        o.check(`curves memory (token cache ${tokenCache}): every /verify answered 204`, fill.errors + fill.unexpected === 0, `${fmt(fill.requests)} requests, ${fill.errors} errors, ${fill.unexpected} unexpected`)
        return { before, after }
      } finally {
        await service.stop()
      }
    }
    log(`  curves memory: ${fmt(m)} entries, a service with both caches, then one with TOKEN_CACHE_SIZE=0...`)
    const both = await measure(m + 1_000)
    const sessionOnly = await measure(0)
    if (this.userId) await o.bulk!.removeQuietly(this.userId)
    const filled = m - warm
    const perSessionEntry = (sessionOnly.after.heapUsed - sessionOnly.before.heapUsed) / filled
    const perTokenEntry = (both.after.heapUsed - both.before.heapUsed) / filled - perSessionEntry
    this.memory = { entries: filled, both, sessionOnly, perTokenEntry, perSessionEntry }
    log(`  curves memory: ${fmt(perTokenEntry)} bytes of heap per verified-token entry, ${fmt(perSessionEntry)} per session liveness entry ` +
      `(${fmt(filled)} entries; heapUsed after GC ${mib(both.before.heapUsed)} -> ${mib(both.after.heapUsed)} MiB with both, ` +
      `${mib(sessionOnly.before.heapUsed)} -> ${mib(sessionOnly.after.heapUsed)} MiB with the liveness cache only; RSS ${mib(both.before.rss)} -> ${mib(both.after.rss)} MiB)`)
  }

  async stop(): Promise<void> {
    if (this.userId && this.o.bulk) await this.o.bulk.deleteUsers([this.userId])
  }
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)

/** The Markdown section "Cost curves". */
export function curvesSection(points: readonly CurvePoint[], memory: CacheMemory | undefined, notes: readonly string[], engine: string): string {
  const tokenCache = envInt('TOKEN_CACHE_SIZE', 10_000)
  const sessionCache = envInt('SESSION_CACHE_SIZE', 100_000)
  const ttl = envInt('SESSION_CACHE_TTL', 30)
  const rows = points.map((p) => {
    const b = p.bare
    const met = p.costRatio === null ? 'n/a' : p.costRatio <= CURVE_COST_TARGET ? 'met' : '**not met**'
    return `| ${p.round} | ${fmt(p.n)} | ${fmt(p.service.reqPerSec)} | ${fmtMs(p.service.p99)} | ${p.service.cpuUs.toFixed(1)} | ` +
      `${engine === 'postgres' ? p.service.postgresUs.toFixed(1) : 'n/a'} | ${b ? fmt(b.reqPerSec) : 'n/a'} | ${b ? fmtMs(b.p99) : 'n/a'} | ` +
      `${b ? b.cpuUs.toFixed(1) : 'n/a'} | ${p.costRatio === null ? 'n/a' : `${p.costRatio.toFixed(2)} ×`} | ${met} | ${p.n <= tokenCache ? 'hit' : 'miss'} |`
  })
  const out = [
    '## Cost curves',
    '',
    `GET /verify over N distinct live access tokens, round-robin (each token once per N requests: the worst case for an LRU, whose hit rate ` +
      `drops from all to none once N passes its size), against bare @fastify/jwt over the same tokens in the same round. Caches: ` +
      `TOKEN_CACHE_SIZE ${fmt(tokenCache)}, SESSION_CACHE_SIZE ${fmt(sessionCache)}, SESSION_CACHE_TTL ${ttl} s (a live answer is re-read after it). ` +
      `Cost = CPU of the server's process group per request; target: the service's at most ${CURVE_COST_TARGET} × bare's at the same N.`,
    ...notes.map((n) => `- ${n}`),
    '',
    '| round | N | service req/s | p99 ms | µs CPU/req | postgres µs/req | bare req/s | p99 ms | µs CPU/req | cost ÷ bare | target | token cache |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...rows
  ]
  if (memory) {
    out.push('', `Memory per cached entry (${fmt(memory.entries)} entries, heapUsed after a full GC): verified-token cache ` +
      `**${fmt(memory.perTokenEntry)} bytes**, session liveness cache **${fmt(memory.perSessionEntry)} bytes** ` +
      `(both caches: ${mib(memory.both.before.heapUsed)} -> ${mib(memory.both.after.heapUsed)} MiB heap, RSS ${mib(memory.both.before.rss)} -> ${mib(memory.both.after.rss)} MiB; ` +
      `liveness cache only: ${mib(memory.sessionOnly.before.heapUsed)} -> ${mib(memory.sessionOnly.after.heapUsed)} MiB heap).`)
  }
  return out.join('\n')
}
