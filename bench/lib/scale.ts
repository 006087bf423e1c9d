// The scenarios of "Many instances, one truth" (bench/README.md, "Flood, curves, logout-all,
// clean-up"): flood, curves, logout-all and cleanup. bench/run.ts calls `run` for each of them
// in each round, adds `sections()` to the report and calls `stop()` at the end; everything else
// lives in their own modules (flood.ts, curves.ts, bulk.ts).
import type { BenchDatabase } from './db.js'
import { FloodScenario, floodSection, parseFloodVariants } from './flood.js'
import { OptionSource, readFlags } from './options.js'
import type { Session } from './http.js'
import type { Baseline, Service, SigningKey } from './service.js'

export const SCALE_SCENARIOS = ['flood'] as const
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
  private readonly loginConnections: number

  constructor(private readonly ctx: ScaleContext) {
    this.loginConnections = source().int('BENCH_FLOOD_LOGIN_CONNECTIONS', 20, 1)
  }

  async run(name: ScaleScenario, round: number): Promise<void> {
    const ctx = this.ctx
    switch (name) {
      case 'flood': {
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
          sessions: options.int('BENCH_FLOOD_SESSIONS', ctx.smoke ? 20 : 200, 2),
          variants: parseFloodVariants(options.optionalString('BENCH_FLOOD_COMPARE')),
          check: ctx.check
        })
        await this.flood.round(round)
        break
      }
    }
  }

  /** Markdown sections for the report (also printed). */
  sections(): string[] {
    const sections: string[] = []
    if (this.flood && this.flood.rounds.length > 0) sections.push(floodSection(this.flood.rounds, this.loginConnections))
    return sections
  }

  async stop(): Promise<void> {
    await this.flood?.stop().catch(() => undefined)
  }
}
