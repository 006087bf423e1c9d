// The scenarios of "Many instances, one truth" (bench/README.md, "Flood, curves, logout-all,
// clean-up"): flood, curves, logout-all and cleanup. bench/run.ts calls `run` for each of them
// in each round, adds `sections()` to the report and calls `stop()` at the end; everything else
// lives in their own modules (flood.ts, curves.ts, bulk-scenarios.ts, bulk.ts).
import { BulkSessions } from './bulk.js'
import { CleanupScenario, cleanupSection, LogoutAllScenario, logoutAllSection } from './bulk-scenarios.js'
import { CurvesScenario, curvesSection } from './curves.js'
import type { BenchDatabase } from './db.js'
import { FloodScenario, floodSection, parseFloodVariants } from './flood.js'
import { OptionSource, readFlags } from './options.js'
import { log } from './report.js'
import type { Session } from './http.js'
import type { Baseline, Service, SigningKey } from './service.js'

export const SCALE_SCENARIOS = ['flood', 'curves', 'logout-all', 'cleanup'] as const
export type ScaleScenario = (typeof SCALE_SCENARIOS)[number]

export interface ScaleContext {
  readonly smoke: boolean
  readonly key: SigningKey
  readonly databaseUrl: string | undefined
  readonly db: BenchDatabase | undefined
  readonly runId: string
  readonly connections: number
  readonly warmup: number
  readonly duration: number
  /** The bench's main service (started with PASSWORD_HASH_QUEUE=1000). */
  readonly service: Service
  /** The bare @fastify/jwt baseline, when baselines run. */
  readonly jwt: Baseline | undefined
  /** The main service's hot sessions (made by login). */
  readonly hot: readonly Session[]
  readonly check: (name: string, ok: boolean, detail: string) => void
  readonly note: (text: string) => void
}

/** The scenarios' own options (BENCH_* variables or --flags, as every other option). */
function source(): OptionSource {
  return new OptionSource({ ...process.env, ...readFlags(process.argv.slice(2), 'BENCH') })
}

export class ScaleScenarios {
  private flood: FloodScenario | undefined
  private curves: CurvesScenario | undefined
  private logoutAll: LogoutAllScenario | undefined
  private cleanup: CleanupScenario | undefined
  private bulk: BulkSessions | undefined
  private readonly skipped = new Set<string>()
  private readonly loginConnections: number
  private readonly cleanupInterval = 5

  constructor(private readonly ctx: ScaleContext) {
    this.loginConnections = source().int('BENCH_FLOOD_LOGIN_CONNECTIONS', 20, 1)
  }

  async run(name: ScaleScenario, round: number): Promise<void> {
    const ctx = this.ctx
    switch (name) {
      case 'flood': {
        if (ctx.smoke) {
          // It starts a service of its own (on PGlite a fresh database too): seconds the CI smoke does not have.
          this.skip(name, 'flood skipped in smoke mode: it starts a service process of its own; run it without BENCH_SMOKE')
          return
        }
        const options = source()
        this.flood ??= new FloodScenario({
          key: ctx.key,
          databaseUrl: ctx.databaseUrl,
          db: ctx.db,
          runId: ctx.runId,
          connections: ctx.connections,
          loginConnections: this.loginConnections,
          warmup: ctx.warmup,
          duration: ctx.duration,
          sessions: options.int('BENCH_FLOOD_SESSIONS', 200, 2),
          variants: parseFloodVariants(options.optionalString('BENCH_FLOOD_COMPARE')),
          check: ctx.check
        })
        await this.flood.round(round)
        break
      }
      case 'curves': {
        const options = source()
        if (ctx.databaseUrl) this.bulk ??= new BulkSessions(ctx.databaseUrl)
        const points = options.string('BENCH_CURVES_POINTS', ctx.smoke ? '10,30' : '1000,10000,100000,1000000')
          .split(',').map((p) => Number(p.trim())).filter((n) => Number.isInteger(n) && n > 0)
        this.curves ??= new CurvesScenario({
          ...ctx,
          bulk: this.bulk,
          points,
          memoryEntries: options.int('BENCH_CURVES_MEMORY_ENTRIES', ctx.smoke ? 2_000 : 100_000),
          warmPassMax: options.int('BENCH_CURVES_WARM_PASS_MAX', 200_000)
        })
        await this.curves.round(round)
        break
      }
      case 'logout-all':
      case 'cleanup': {
        if (!ctx.databaseUrl) {
          this.skip(name, `${name} skipped: it makes its rows by SQL, which needs PostgreSQL (DATABASE_URL); on PGlite the bench cannot reach the service's database`)
          return
        }
        const options = source()
        this.bulk ??= new BulkSessions(ctx.databaseUrl)
        const base = { key: ctx.key, databaseUrl: ctx.databaseUrl, bulk: this.bulk, runId: ctx.runId, connections: ctx.connections, service: ctx.service, hot: ctx.hot, check: ctx.check }
        if (name === 'logout-all') {
          this.logoutAll ??= new LogoutAllScenario(base, options.int('BENCH_LOGOUT_ALL_SESSIONS', ctx.smoke ? 1_000 : 10_000, 2), options.int('BENCH_LOGOUT_ALL_REPETITIONS', ctx.smoke ? 1 : 3, 1))
          await this.logoutAll.round(round)
        } else {
          this.cleanup ??= new CleanupScenario(base, options.int('BENCH_CLEANUP_ROWS', ctx.smoke ? 20_000 : 1_000_000, 1), this.cleanupInterval)
          await this.cleanup.round(round)
        }
        break
      }
    }
  }

  private skip(name: string, text: string): void {
    if (this.skipped.has(name)) return
    this.skipped.add(name)
    this.ctx.note(text)
    log(`  note: ${text}`)
  }

  /** Markdown sections for the report (also printed). */
  sections(): string[] {
    const sections: string[] = []
    if (this.flood && this.flood.rounds.length > 0) sections.push(floodSection(this.flood.rounds, this.loginConnections))
    if (this.curves && this.curves.points.length > 0) sections.push(curvesSection(this.curves.points, this.curves.memory, this.curves.notes, this.ctx.databaseUrl ? 'postgres' : 'pglite'))
    if (this.logoutAll && this.logoutAll.runs.length > 0) sections.push(logoutAllSection(this.logoutAll.runs))
    if (this.cleanup && this.cleanup.runs.length > 0) sections.push(cleanupSection(this.cleanup.runs, this.cleanupInterval))
    return sections
  }

  async stop(): Promise<void> {
    await this.flood?.stop().catch(() => undefined)
    await this.curves?.stop().catch(() => undefined)
    await this.logoutAll?.stop().catch(() => undefined)
    await this.cleanup?.stop().catch(() => undefined)
    await this.bulk?.close().catch(() => undefined)
  }
}
