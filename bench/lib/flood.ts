// The `flood` scenario (bench/README.md): does a login flood starve the gateway path? Per round
// and per service variant, GET /verify alone, then GET /verify while `loginConnections`
// connections send POST /login as fast as they are answered, side by side. The service runs with
// the password-hashing bound as an operator gets it (PASSWORD_HASH_CONCURRENCY and
// PASSWORD_HASH_QUEUE defaults, not the bench's queue of 1000): that bound is what is measured.
// Each variant is a service process of its own, started once, with its own users and sessions
// (made through its API), so the scenario runs alike on PGlite and PostgreSQL.
import { randomBytes } from 'node:crypto'
import { API, login, mapLimit, register, type Session, type User } from './http.js'
import { runLoad, type LoadResult, type Op, type OpSource } from './load.js'
import type { BenchDatabase } from './db.js'
import { fmtMs, log } from './report.js'
import { startService, type Service, type SigningKey } from './service.js'

/** /verify during the flood: at least this share of its quiet throughput... */
export const FLOOD_THROUGHPUT_TARGET = 0.5
/** ...and a p99 at most this many times its quiet p99. */
export const FLOOD_P99_TARGET = 2

export interface FloodVariant {
  /** `defaults`, or the name given in BENCH_FLOOD_COMPARE. */
  readonly name: string
  /** Service settings of the variant (none: the service's defaults). */
  readonly env: Record<string, string>
  /** Another checkout the variant's service runs from (`name@/path`): the code before a change. */
  readonly root?: string
}

/**
 * BENCH_FLOOD_COMPARE: `name:KEY=VALUE,KEY=VALUE;name2@/path/to/checkout:...`, each measured next
 * to the defaults; `@/path` runs that variant's service from another checkout (e.g. `git worktree
 * add /tmp/before <commit>` with node_modules linked), for a before/after comparison in one run.
 */
export function parseFloodVariants(spec: string | undefined): FloodVariant[] {
  const variants: FloodVariant[] = [{ name: 'defaults', env: {} }]
  for (const part of (spec ?? '').split(';').map((p) => p.trim()).filter(Boolean)) {
    const [name, settings = ''] = part.split(/:(.*)/s, 2)
    const env: Record<string, string> = {}
    for (const pair of settings.split(',').map((p) => p.trim()).filter(Boolean)) {
      const [key, value] = pair.split(/=(.*)/s, 2)
      if (!/^[A-Z][A-Z0-9_]*$/.test(key) || value === undefined) throw new Error(`BENCH_FLOOD_COMPARE: "${pair}" is not KEY=VALUE`)
      env[key] = value
    }
    const [label, root] = name.split('@', 2).map((p) => p.trim())
    variants.push({ name: label, env, ...(root ? { root } : {}) })
  }
  return variants
}

export interface FloodOptions {
  readonly key: SigningKey
  readonly databaseUrl: string | undefined
  readonly db: BenchDatabase | undefined
  readonly runId: string
  /** /verify connections (BENCH_CONNECTIONS). */
  readonly connections: number
  /** Connections sending logins (BENCH_FLOOD_LOGIN_CONNECTIONS, 20). */
  readonly loginConnections: number
  readonly warmup: number
  readonly duration: number
  /** Distinct access tokens /verify goes round (sessions made by login on the variant's service). */
  readonly sessions: number
  readonly variants: readonly FloodVariant[]
  readonly check: (name: string, ok: boolean, detail: string) => void
}

interface RunFigures {
  readonly reqPerSec: number
  readonly p50: number
  readonly p99: number
  readonly requests: number
  readonly errors: number
  readonly unexpected: number
  /** Cores used by the service's process group (argon2id threads included). */
  readonly serverCpu: number
  readonly clientCpu: number
  readonly postgresCpu: number
}

export interface FloodRound {
  readonly round: number
  readonly variant: string
  readonly env: Record<string, string>
  readonly root?: string
  readonly quiet: RunFigures
  readonly flood: RunFigures
  readonly logins: { readonly ok: number, readonly busy: number, readonly other: Record<string, number>, readonly errors: number, readonly seconds: number }
  readonly throughputRatio: number
  readonly p99Ratio: number
}

const figures = (r: LoadResult): RunFigures => ({
  reqPerSec: r.reqPerSec, p50: r.p50, p99: r.p99, requests: r.requests, errors: r.errors, unexpected: r.unexpected,
  serverCpu: r.serverCpu, clientCpu: r.clientCpu, postgresCpu: r.postgresCpu
})

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

interface VariantState {
  readonly variant: FloodVariant
  readonly service: Service
  readonly users: User[]
  readonly sessions: Session[]
}

export class FloodScenario {
  private readonly states: VariantState[] = []
  readonly rounds: FloodRound[] = []

  constructor(private readonly options: FloodOptions) {}

  /** Starts each variant's service and makes its users and sessions (once, at the first round). */
  private async setup(): Promise<void> {
    if (this.states.length > 0) return
    const o = this.options
    for (const [index, variant] of o.variants.entries()) {
      log(`  flood: starting the service "${variant.name}"${variant.root ? ` from ${variant.root}` : ''}${Object.keys(variant.env).length > 0 ? ` (${Object.entries(variant.env).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''} with the default password-hashing bound...`)
      const service = await startService({
        key: o.key,
        databaseUrl: o.databaseUrl,
        defaultHashQueue: true,
        env: { SESSION_CLEANUP_INTERVAL: '0', RATE_LIMIT: 'off', ...variant.env },
        root: variant.root
      })
      const users: User[] = Array.from({ length: 2 }, (_, i) => ({
        email: `bench-${o.runId}-flood${index}-${i}@example.com`,
        password: `pw-${randomBytes(12).toString('base64url')}`
      }))
      const sessions: Session[] = await mapLimit(users, 2, (user) => register(service.url, user))
      // Fewer in flight than the default queue holds, so setup never meets its 503.
      sessions.push(...await mapLimit(Array.from({ length: Math.max(0, o.sessions - users.length) }, (_, i) => users[i % users.length]), 4,
        (user) => login(service.url, user)))
      this.states.push({ variant, service, users, sessions })
    }
  }

  async round(round: number): Promise<void> {
    await this.setup()
    const o = this.options
    for (const state of this.states) {
      const { service, sessions, users } = state
      const tokens = sessions.map((s) => s.access)
      let i = 0
      const verify: OpSource = () => ({
        kind: 'verify', method: 'GET', path: `${API}/verify`, headers: { authorization: `Bearer ${tokens[i++ % tokens.length]}` }, expect: 204
      })
      const quiet = await runLoad({ url: service.url, connections: o.connections, warmup: o.warmup, duration: o.duration, next: verify, serverGroup: service.pid })

      // The flood: logins as fast as they are answered (a 503 is answered at once, and its
      // connection sends the next login: Retry-After is what an attacker ignores).
      let u = 0
      const bodies = users.map((user) => JSON.stringify({ email: user.email, password: user.password }))
      const loginOp = (): Op => ({ kind: 'login', method: 'POST', path: `${API}/login`, body: bodies[u++ % bodies.length], expect: 200 })
      const lead = 0.5
      const loginLoad = runLoad({
        url: service.url, connections: o.loginConnections, warmup: 0, duration: lead + o.warmup + o.duration + 0.5, next: loginOp, timeout: 30
      })
      await new Promise((resolve) => setTimeout(resolve, lead * 1000))
      const flooded = await runLoad({ url: service.url, connections: o.connections, warmup: o.warmup, duration: o.duration, next: verify, serverGroup: service.pid })
      const logins = await loginLoad

      const other: Record<string, number> = {}
      for (const [code, n] of Object.entries(logins.status)) if (code !== '200' && code !== '503') other[code] = n
      const entry: FloodRound = {
        round,
        variant: state.variant.name,
        env: state.variant.env,
        root: state.variant.root,
        quiet: figures(quiet),
        flood: figures(flooded),
        logins: { ok: logins.status['200'] ?? 0, busy: logins.status['503'] ?? 0, other, errors: logins.errors, seconds: logins.elapsedSec },
        throughputRatio: flooded.reqPerSec / quiet.reqPerSec,
        p99Ratio: flooded.p99 / quiet.p99
      }
      this.rounds.push(entry)
      log(`  flood [${entry.variant}]  verify alone ${fmt(quiet.reqPerSec)} req/s p99 ${fmtMs(quiet.p99)} ms (CPU ${quiet.serverCpu.toFixed(2)}); ` +
        `with ${o.loginConnections} login connections ${fmt(flooded.reqPerSec)} req/s p99 ${fmtMs(flooded.p99)} ms (CPU ${flooded.serverCpu.toFixed(2)}): ` +
        `${entry.throughputRatio.toFixed(2)}× throughput (target ≥ ${FLOOD_THROUGHPUT_TARGET}: ${entry.throughputRatio >= FLOOD_THROUGHPUT_TARGET ? 'met' : 'not met'}), ` +
        `${entry.p99Ratio.toFixed(2)}× p99 (target ≤ ${FLOOD_P99_TARGET}: ${entry.p99Ratio <= FLOOD_P99_TARGET ? 'met' : 'not met'}); ` +
        `bench CPU ${quiet.clientCpu.toFixed(2)} -> ${flooded.clientCpu.toFixed(2)}, postgres ${quiet.postgresCpu.toFixed(2)} -> ${flooded.postgresCpu.toFixed(2)}; ` +
        `logins ${fmt(entry.logins.ok / Math.max(0.001, entry.logins.seconds))}/s 200, ${fmt(entry.logins.busy / Math.max(0.001, entry.logins.seconds))}/s 503` +
        `${Object.keys(other).length > 0 ? `, others ${Object.entries(other).map(([c, n]) => `${c}×${n}`).join(' ')}` : ''}`)
      o.check(`flood round ${round} [${entry.variant}]: /verify answered 204 alone and during the flood`,
        quiet.errors + quiet.unexpected + flooded.errors + flooded.unexpected === 0 && quiet.requests > 0 && flooded.requests > 0,
        `alone ${fmt(quiet.requests)} requests, ${quiet.errors} errors, ${quiet.unexpected} unexpected; during ${fmt(flooded.requests)}, ` +
        `${flooded.errors} errors, ${flooded.unexpected} unexpected`)
      o.check(`flood round ${round} [${entry.variant}]: every login answered 200 or 503`,
        Object.keys(other).length === 0 && logins.errors === 0 && entry.logins.ok > 0,
        `${fmt(entry.logins.ok)} × 200, ${fmt(entry.logins.busy)} × 503, ${logins.errors} errors${Object.keys(other).length > 0 ? `, others ${JSON.stringify(other)}` : ''}`)
    }
  }

  /** Stops the services; on PostgreSQL removes their users (sessions go with them). */
  async stop(): Promise<void> {
    for (const state of this.states) await state.service.stop()
    if (this.options.db) {
      const ids = this.states.flatMap((s) => s.users.map((u) => u.id)).filter((id): id is string => Boolean(id))
      if (ids.length > 0) await this.options.db.deleteUsers(ids)
    }
  }
}

/** The Markdown section "Login flood". */
export function floodSection(rounds: readonly FloodRound[], loginConnections: number): string {
  const rows = rounds.map((r) => {
    const ok = r.throughputRatio >= FLOOD_THROUGHPUT_TARGET && r.p99Ratio <= FLOOD_P99_TARGET
    const perSec = (n: number) => fmt(n / Math.max(0.001, r.logins.seconds))
    return `| ${r.round} | ${r.variant} | ${fmt(r.quiet.reqPerSec)} | ${fmtMs(r.quiet.p99)} | ${r.quiet.serverCpu.toFixed(2)} | ` +
      `${fmt(r.flood.reqPerSec)} | ${fmtMs(r.flood.p99)} | ${r.flood.serverCpu.toFixed(2)} | ${r.throughputRatio.toFixed(2)} × | ${r.p99Ratio.toFixed(2)} × | ` +
      `${ok ? 'met' : '**not met**'} | ${perSec(r.logins.ok)} / ${perSec(r.logins.busy)} |`
  })
  const variants = [...new Map(rounds.map((r) => [r.variant, r.env])).entries()]
    .map(([name, env]) => `\`${name}\`: ${Object.keys(env).length === 0 ? 'the service\'s defaults' : Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}` +
      `${rounds.find((r) => r.variant === name)?.root ? ` (from ${rounds.find((r) => r.variant === name)!.root})` : ''}`)
  return [
    '## Login flood',
    '',
    `GET /verify alone, then while ${loginConnections} connections send POST /login (rate limits off, the service's password-hashing ` +
      `bound: PASSWORD_HASH_CONCURRENCY and PASSWORD_HASH_QUEUE as configured, not the bench's queue of 1000), one right after the other. ` +
      `Targets: at least ${FLOOD_THROUGHPUT_TARGET} × the quiet throughput and a p99 at most ${FLOOD_P99_TARGET} × the quiet p99. ` +
      `Variants: ${variants.join('; ')}.`,
    '',
    '| round | variant | alone req/s | p99 ms | CPU | during req/s | p99 ms | CPU | throughput | p99 | targets | logins/s 200 / 503 |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
    ...rows
  ].join('\n')
}
