// Summaries (median over rounds), the printed/Markdown table and the result files.
import { execFileSync } from 'node:child_process'
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import path from 'node:path'
import type { KindStats, LoadResult } from './load.js'
import type { Distribution } from './ssf.js'
import { RUNTIME_FLAGS } from './service.js'

export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export interface RoundResult {
  readonly round: number
  readonly result: LoadResult
  /** Requests sent in the warm-up before this measurement (informational). */
  readonly warmupRequests: number
  /** For runs of a fixed number of requests (logout, jwt+DELETE): that number. */
  readonly amount?: number
  /** When the measured run started and ended, in seconds after the service was spawned
   *  (to cut the same window out of a --cpu-prof profile: bench/profile.ts). */
  readonly window?: readonly [number, number]
}

export interface Summary {
  readonly name: string
  readonly kind: 'target' | 'baseline'
  readonly rounds: RoundResult[]
  /** Median over rounds (req/s, p50, p99 each on its own). */
  readonly reqPerSec: number
  readonly p50: number
  readonly p99: number
  /** Sums over rounds. */
  readonly requests: number
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  readonly expectedNon2xx: number
  readonly unexpected: number
  readonly status5xx: number
  readonly status: Record<string, number>
  readonly byKind: Record<string, KindStats>
  /** Median CPU in cores during the measured runs: the server's processes, the load generator, PostgreSQL. */
  readonly cpu: { server: number, bench: number, postgres: number }
  readonly ratios: Record<string, number | null>
  readonly notes: string[]
}

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export function summarise(name: string, kind: Summary['kind'], rounds: RoundResult[], notes: string[] = []): Summary {
  const results = rounds.map((r) => r.result)
  const sum = (pick: (r: LoadResult) => number) => results.reduce((total, r) => total + pick(r), 0)
  const status: Record<string, number> = {}
  const byKind: Record<string, KindStats> = {}
  for (const r of results) {
    for (const [code, n] of Object.entries(r.status)) status[code] = (status[code] ?? 0) + n
  }
  // Per-kind figures from the median round (by req/s): percentiles do not add up across rounds.
  const medianRound = [...results].sort((a, b) => a.reqPerSec - b.reqPerSec)[Math.floor((results.length - 1) / 2)]
  if (medianRound) Object.assign(byKind, medianRound.byKind)
  return {
    name,
    kind,
    rounds,
    reqPerSec: median(results.map((r) => r.reqPerSec)),
    p50: median(results.map((r) => r.p50)),
    p99: median(results.map((r) => r.p99)),
    requests: sum((r) => r.requests),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    expectedNon2xx: sum((r) => r.expectedNon2xx),
    unexpected: sum((r) => r.unexpected),
    status5xx: sum((r) => r.status5xx),
    status,
    byKind,
    cpu: {
      server: median(results.map((r) => r.serverCpu)),
      bench: median(results.map((r) => r.clientCpu)),
      postgres: median(results.map((r) => r.postgresCpu))
    },
    ratios: {},
    notes
  }
}

const fmtRate = (n: number) => (Number.isFinite(n) ? (n > 0 && n < 10 ? n.toFixed(2) : Math.round(n).toLocaleString('en-US')) : 'n/a')
export const fmtMs = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : 'n/a')
const fmtRatio = (n: number | null | undefined) => (n === null || n === undefined || !Number.isFinite(n) ? 'n/a' : `${n.toFixed(n > 0 && n < 0.1 ? 3 : 2)}×`)

/** A req/s over another's in the same round; null when either did not run that round. */
function roundRatio(rounds: readonly RoundResult[] | undefined, reference: readonly RoundResult[] | undefined, round: number): number | null {
  const a = rounds?.find((r) => r.round === round)?.result.reqPerSec
  const b = reference?.find((r) => r.round === round)?.result.reqPerSec
  return a !== undefined && b !== undefined && b > 0 ? a / b : null
}

/**
 * One round of an introspection scenario against its references (bench/README.md, "Reading the
 * table"): its req/s over verify's, the HTTP-shape ceiling (the hello-form-json baseline's req/s
 * over hello-204's: a form POST answered with JSON against a bodiless 204 GET, bare Fastify),
 * and the share of that ceiling it reaches (versusVerify ÷ ceiling).
 */
export interface ShapeRound {
  readonly round: number
  readonly versusVerify: number | null
  readonly ceiling: number | null
  readonly share: number | null
}

export interface ShapeRuns {
  readonly target: readonly RoundResult[]
  readonly verify?: readonly RoundResult[]
  readonly formJson?: readonly RoundResult[]
  readonly plain204?: readonly RoundResult[]
}

export function shapeRound(runs: ShapeRuns, round: number): ShapeRound {
  const versusVerify = roundRatio(runs.target, runs.verify, round)
  const ceiling = roundRatio(runs.formJson, runs.plain204, round)
  return { round, versusVerify, ceiling, share: versusVerify !== null && ceiling !== null ? versusVerify / ceiling : null }
}

/** Medians over rounds of each figure (over the rounds where it could be computed). */
export function shapeSummary(runs: ShapeRuns): { rounds: ShapeRound[], versusVerify: number | null, ceiling: number | null, share: number | null } {
  const rounds = runs.target.map((r) => shapeRound(runs, r.round))
  const med = (pick: (r: ShapeRound) => number | null) => {
    const values = rounds.map(pick).filter((v): v is number => v !== null)
    return values.length > 0 ? median(values) : null
  }
  return { rounds, versusVerify: med((r) => r.versusVerify), ceiling: med((r) => r.ceiling), share: med((r) => r.share) }
}

const fmtFactor = (n: number | null) => (n === null ? 'n/a' : n.toFixed(2))

/** The per-round console line: `introspect ÷ verify 0.51× (target ≥ 0.8×: not met); ceiling ...; share ...`. */
export function shapeLine(name: string, figures: ShapeRound, target: number): string {
  const { versusVerify, ceiling, share } = figures
  const verdict = versusVerify === null ? 'verify did not run' : versusVerify >= target ? 'met' : 'not met'
  return `${name} ÷ verify ${fmtRatio(versusVerify)} (target ≥ ${target}×: ${verdict}); ` +
    `HTTP-shape ceiling hello-form-json ÷ hello-204 ${ceiling === null ? 'n/a (baselines off)' : fmtRatio(ceiling)}; ` +
    `${name} at ${fmtFactor(share)} of the ceiling`
}

/** The table note of an introspection scenario: its ratio to verify, the target, the ceiling and the share, medians and rounds. */
export function shapeNote(name: string, summary: ReturnType<typeof shapeSummary>, target: number): string {
  const perRound = (pick: (r: ShapeRound) => number | null) =>
    summary.rounds.length > 1 ? ` (rounds ${summary.rounds.map((r) => fmtFactor(pick(r))).join(', ')})` : ''
  if (summary.versusVerify === null) return `${name} ÷ verify n/a (verify did not run; target ≥ ${target}×)`
  const met = summary.versusVerify >= target
  let note = `${name} ÷ verify ${fmtRatio(summary.versusVerify)} in the same round${perRound((r) => r.versusVerify)}: target ≥ ${target}× ${met ? 'met' : 'not met'}`
  if (summary.ceiling === null) return `${note}; HTTP-shape ceiling n/a (needs the hello-204 and hello-form-json baselines)`
  note += `; HTTP-shape ceiling (hello-form-json ÷ hello-204, bare Fastify, same round) ${fmtRatio(summary.ceiling)}${perRound((r) => r.ceiling)}`
  if (summary.ceiling < target) note += `, below the target: bare Fastify answering this shape of request cannot reach ${target}× either`
  note += `; ${name} reaches ${fmtFactor(summary.share)} of the ceiling${perRound((r) => r.share)}`
  return note
}

export interface Meta {
  readonly startedAt: string
  readonly commit: string
  readonly node: string
  readonly cpu: string
  /** 1-minute load average before and after the run: other work on the machine skews results. */
  readonly load: { before: number, after: number }
  readonly engine: 'postgres' | 'pglite'
  readonly database: string
  readonly algorithm: string
  readonly rateLimit: boolean
  readonly entry: string
  readonly workers: number
  readonly duration: number
  readonly warmup: number
  readonly connections: number
  readonly rounds: number
  readonly smoke: boolean
  readonly setup: { users: number, sessions: number, hotSessions: number, seconds: number }
  readonly argon2: { hashesPerSec: number, inFlight: number, seconds: number } | null
  readonly notes: string[]
}

export const BASELINE_COLUMNS = [
  { key: 'hello', title: '× hello' },
  { key: 'jwt', title: '× jwt' },
  { key: 'jwt-pg-delete', title: '× jwt+DELETE' }
] as const

/** The results table (Markdown, also what is printed). */
export function resultsTable(summaries: readonly Summary[], withPostgres = false): string {
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'requests', 'errors', 'non-2xx expected / unexpected', '5xx',
    ...BASELINE_COLUMNS.map((c) => c.title), withPostgres ? 'CPU cores server / bench / postgres' : 'CPU cores server / bench', 'notes']
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((h, i) => (i === 0 || i === header.length - 1 ? '---' : '---:')).join('|')}|`]
  for (const s of summaries) {
    const name = s.kind === 'baseline' ? `*baseline: ${s.name}*` : `**${s.name}**`
    const ratios = BASELINE_COLUMNS.map((c) => (s.kind === 'baseline' ? '' : fmtRatio(s.ratios[c.key])))
    lines.push(`| ${[
      name,
      fmtRate(s.reqPerSec),
      fmtMs(s.p50),
      fmtMs(s.p99),
      s.requests.toLocaleString('en-US'),
      String(s.errors),
      `${s.expectedNon2xx} / ${s.unexpected}`,
      String(s.status5xx),
      ...ratios,
      [s.cpu.server, s.cpu.bench, ...(withPostgres ? [s.cpu.postgres] : [])].map((c) => (Number.isFinite(c) ? c.toFixed(2) : 'n/a')).join(' / '),
      s.notes.join('; ')
    ].join(' | ')} |`)
  }
  return lines.join('\n')
}

export function kindsTable(summary: Summary): string {
  const lines = ['| request | count | p50 ms | p99 ms | statuses | unexpected |', '|---|---:|---:|---:|---|---:|']
  for (const [kind, k] of Object.entries(summary.byKind)) {
    const statuses = Object.entries(k.status).map(([code, n]) => `${code}×${n}`).join(' ')
    lines.push(`| ${kind} | ${k.count} | ${fmtMs(k.p50)} | ${fmtMs(k.p99)} | ${statuses} | ${k.unexpected} |`)
  }
  return lines.join('\n')
}

export function roundsTable(summaries: readonly Summary[]): string {
  const rounds = Math.max(0, ...summaries.map((s) => s.rounds.length))
  const header = ['scenario', ...Array.from({ length: rounds }, (_, i) => `round ${i + 1} req/s (p99 ms)`)]
  const lines = [`| ${header.join(' | ')} |`, `|---|${'---:|'.repeat(rounds)}`]
  for (const s of summaries) {
    lines.push(`| ${s.name} | ${s.rounds.map((r) => `${fmtRate(r.result.reqPerSec)} (${fmtMs(r.result.p99)})`).join(' | ')} |`)
  }
  return lines.join('\n')
}

export function markdownReport(meta: Meta, summaries: readonly Summary[], checks: readonly Check[], failures: readonly string[], sections: readonly string[] = []): string {
  const out: string[] = []
  out.push(`# Benchmark: ${meta.engine}, ${meta.algorithm}${meta.workers > 0 ? `, ${meta.workers} workers` : ''}${meta.smoke ? ' (smoke)' : ''}`)
  out.push('')
  out.push(`- when: ${meta.startedAt}, commit ${meta.commit}`)
  out.push(`- machine: ${meta.cpu}, node ${meta.node}; load generator (autocannon) on the same machine; ` +
    `1-min load average ${meta.load.before.toFixed(2)} before, ${meta.load.after.toFixed(2)} after`)
  out.push(`- service: \`node ${RUNTIME_FLAGS.join(' ')} --import tsx ${meta.entry}\` on 127.0.0.1, ${meta.database}, LOG_LEVEL=warn, ${meta.rateLimit ? 'RATE_LIMIT=on (limits set out of reach)' : 'RATE_LIMIT=off'}, JWT_ALGORITHM=${meta.algorithm}`)
  out.push(`- load: ${meta.connections} connections, ${meta.warmup} s warm-up + ${meta.duration} s per scenario, ${meta.rounds} round(s)${meta.rounds > 1 ? ' (alternating baselines/targets; medians shown)' : ''}`)
  out.push(`- setup: ${meta.setup.users} users, ${meta.setup.sessions} sessions through the API (${meta.setup.hotSessions} for verify/me/refresh) in ${meta.setup.seconds.toFixed(1)} s`)
  if (meta.argon2) {
    out.push(`- argon2id ceiling (in-process, @node-rs/argon2 \`hash\` with the service's parameters, ${meta.argon2.inFlight} in flight, ${meta.argon2.seconds} s): ${fmtRate(meta.argon2.hashesPerSec)} hashes/s`)
  }
  for (const note of meta.notes) out.push(`- ${note}`)
  out.push('')
  out.push(resultsTable(summaries, meta.engine === 'postgres'))
  out.push('')
  out.push('Latency is per request, measured by the load generator (sub-millisecond). Ratios are the scenario\'s req/s over the baseline\'s in the same round (median over rounds). ' +
    'Every request that consumes something (refresh, logout, login) uses its own token or session. CPU is in cores used during the measured run ' +
    '(the server\'s process group, the load generator, and every postgres process on the machine): when server + bench add up to the machine\'s cores, ' +
    'the load generator competes with the server and the figures are a floor, not the server\'s ceiling.')
  if (summaries.some((s) => s.ratios.ceiling !== undefined && s.ratios.ceiling !== null)) {
    out.push('')
    out.push('The HTTP-shape ceiling of introspect ÷ verify is the hello-form-json baseline\'s req/s over hello-204\'s in the same round: bare Fastify ' +
      'answering a form POST (the same body and Authorization length as introspect\'s) with JSON, against a bodiless 204 to a GET (the same request as verify\'s). ' +
      'It is what the difference in HTTP shape alone costs on this machine, none of the service\'s work; the share of the ceiling is introspect ÷ verify over it ' +
      '(1.00: relative to verify, introspect loses no more than the HTTP shape costs bare Fastify; below 1.00: the service\'s own extra work on introspect).')
  }
  const mixed = summaries.find((s) => s.name === 'mixed')
  if (mixed) {
    out.push('')
    out.push('Mixed workload by request:')
    out.push('')
    out.push(kindsTable(mixed))
  }
  if (meta.rounds > 1) {
    out.push('')
    out.push(roundsTable(summaries))
  }
  for (const section of sections) {
    out.push('')
    out.push(section)
  }
  if (checks.length > 0) {
    out.push('')
    out.push('Checks:')
    out.push('')
    for (const check of checks) out.push(`- ${check.ok ? 'ok' : 'FAILED'}: ${check.name}: ${check.detail}`)
  }
  out.push('')
  out.push(failures.length === 0 ? 'No errors, no 5xx, no unexpected status.' : `FAILURES:\n\n${failures.map((f) => `- ${f}`).join('\n')}`)
  return `${out.join('\n')}\n`
}

export function gitCommit(root: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, timeout: 5_000, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, timeout: 5_000, encoding: 'utf8' }).trim()
    return dirty ? `${head} (with uncommitted changes)` : head
  } catch {
    return 'unknown'
  }
}

export function loadAverage(): number {
  return loadavg()[0]
}

export function cpuDescription(): string {
  const list = cpus()
  return `${list.length} × ${list[0]?.model?.trim() || 'unknown CPU'}`
}

/** Writes `<stamp>-<label>.json/.md` and, unless `latest` is false, latest.json/latest.md. */
export function writeResults(dir: string, label: string, json: unknown, markdown: string, latest: boolean): string[] {
  mkdirSync(dir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const written: string[] = []
  const write = (name: string, content: string) => {
    const file = path.join(dir, name)
    const tmp = `${file}.tmp`
    writeFileSync(tmp, content)
    renameSync(tmp, file)
    written.push(file)
  }
  const text = `${JSON.stringify(json, null, 2)}\n`
  write(`${stamp}-${label}.json`, text)
  write(`${stamp}-${label}.md`, markdown)
  if (latest) {
    write('latest.json', text)
    write('latest.md', markdown)
  }
  return written
}

export const log = (line = ''): void => {
  process.stdout.write(`${line}\n`)
}

/** Prints the failures, if any; true when there were none. */
export function reportFailures(failures: readonly string[]): boolean {
  if (failures.length === 0) return true
  log('')
  log('FAILED:')
  for (const failure of failures) log(`- ${failure}`)
  return false
}

/** The propagation probe of one mixed round (bench/README.md): ms from a logout's 204 to the downstream's first 401 for it. */
export interface PropagationRound extends Distribution {
  readonly round: number
  readonly timedOut: number
  readonly errors: number
  readonly delays: readonly number[]
}

/** The propagation delay over every round (all tries pooled), as a Markdown section (also printed). */
export function propagationSection(rounds: readonly PropagationRound[], pooled: Distribution, intervalMs: number, probeDelayMs: number): string {
  const lines = [
    `Propagation delay under the mixed workload: ${pooled.count} logouts of spare sessions (ones the mixed workload never uses), one every ${intervalMs} ms ` +
    `while it ran; for each, the time from the logout's 204 (as the bench saw it) until the downstream's \`/protected\` answered 401 "session has ended" ` +
    `for its access token, probed every ${probeDelayMs} ms (so each figure includes up to one probe's round trip plus ${probeDelayMs} ms).`,
    '',
    '| round | logouts | p50 ms | p99 ms | max ms | not in time | errors |',
    '|---|---:|---:|---:|---:|---:|---:|'
  ]
  for (const r of rounds) lines.push(`| ${r.round} | ${r.count} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${fmtMs(r.max)} | ${r.timedOut} | ${r.errors} |`)
  if (rounds.length > 1) lines.push(`| all | ${pooled.count} | ${fmtMs(pooled.p50)} | ${fmtMs(pooled.p99)} | ${fmtMs(pooled.max)} | | |`)
  return lines.join('\n')
}

/** One round of the streams scenario (bench/README.md). */
export interface StreamsRound {
  readonly round: number
  readonly streams: number
  readonly createSeconds: number
  /** VmRSS of the service, bytes: before the streams, with them all waiting, the peak during the logouts, after deleting them. */
  readonly rss: { before: number, withStreams: number, peak: number, after: number }
  /** ssf_streams rows of the receivers' clients (PostgreSQL), or the streams GET /ssf/streams lists (PGlite). */
  readonly streamRows: number
  /** security_events rows per fan-out logout (PostgreSQL only). */
  readonly eventRows: readonly number[] | null
  /** Per fan-out logout, the distinct event ids in the jti of its SETs over every stream (1: one row). */
  readonly distinctEventIds: readonly number[]
  /** ms from a logout's 204 to each stream's receipt of its SET, every stream and fan-out logout pooled. */
  readonly fanout: Distribution
  /** Per fan-out logout, until the last stream had it. */
  readonly allReceived: Distribution
  readonly fanoutLogouts: number
  /** CPU of the receivers' process during the logouts with the streams, cores. */
  readonly receiversCpu: number
  /** Logout req/s with the streams over without, same round. */
  readonly logoutRatio: number | null
}

const mib = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : 'n/a')

export function streamsLine(r: StreamsRound): string {
  return `streams: logout with ${r.streams} streams ${fmtRatio(r.logoutRatio)} of without; fan-out to all streams p50 ${fmtMs(r.fanout.p50)} ms, ` +
    `p99 ${fmtMs(r.fanout.p99)} ms, max ${fmtMs(r.fanout.max)} ms; RSS ${mib(r.rss.before)} -> ${mib(r.rss.withStreams)} with the streams ` +
    `(peak ${mib(r.rss.peak)} during the logouts) -> ${mib(r.rss.after)} after deleting them; ${r.streamRows} stream rows, ` +
    `${r.eventRows ? `security_events rows per logout ${r.eventRows.join(', ')}` : `event ids per logout ${r.distinctEventIds.join(', ')}`}`
}

export function streamsSection(rounds: readonly StreamsRound[], engine: string): string {
  const lines = [
    'Many streams: the cost of poll streams with a long poll waiting on each (bench/README.md, "streams"). "logout @ 0 streams" and ' +
    '"logout @ N streams" in the table above are the same logouts without and with them. Fan-out: single logouts with the service otherwise idle, ' +
    'the time from the 204 to each stream\'s receipt of the SET (receivers in a process of their own; clocks compared by round trip, about ±0.5 ms).',
    '',
    '| round | streams | created in s | logout ÷ without | fan-out p50 ms | p99 ms | max ms | all received (median, max) ms | receivers CPU | RSS before / with / peak / after | rows |',
    '|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|'
  ]
  for (const r of rounds) {
    const rows = r.eventRows
      ? `${r.streamRows} ssf_streams, security_events per logout ${r.eventRows.join(', ')}`
      : `${r.streamRows} streams listed, event ids per logout ${r.distinctEventIds.join(', ')} (${engine}: no direct DB access)`
    lines.push(`| ${r.round} | ${r.streams} | ${r.createSeconds.toFixed(1)} | ${fmtRatio(r.logoutRatio)} | ${fmtMs(r.fanout.p50)} | ${fmtMs(r.fanout.p99)} | ` +
      `${fmtMs(r.fanout.max)} | ${fmtMs(r.allReceived.p50)}, ${fmtMs(r.allReceived.max)} | ${Number.isFinite(r.receiversCpu) ? r.receiversCpu.toFixed(2) : 'n/a'} | ` +
      `${mib(r.rss.before)} / ${mib(r.rss.withStreams)} / ${mib(r.rss.peak)} / ${mib(r.rss.after)} | ${rows} |`)
  }
  return lines.join('\n')
}
