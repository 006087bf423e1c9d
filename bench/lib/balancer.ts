// The `balancer` scenario (bench/README.md): three instances of the service on one PostgreSQL
// behind nginx, configured by docs/nginx-balancer.conf.example itself (only the addresses and
// paths swapped, by the helper test/gateway/balancer.test.ts uses too). The mixed workload goes
// through nginx; meanwhile logouts of sessions it never uses are sent to one instance directly and
// each instance is asked directly until all three refuse the token: the propagation window.
// PostgreSQL only (instances share sessions through it). Every wait is bounded; nginx and the
// instances are stopped by stop(), and nginx also when this process exits.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { findNginx, parseBalancerLog, renderBalancerConfig, skipReason, startNginx, BALANCER_EXAMPLE, type Nginx } from '../../test/support/nginx.js'
import { freePort, sleep } from './children.js'
import type { BenchDatabase } from './db.js'
import { API, checkAccessTokens, login, mapLimit, register, type Session, type User } from './http.js'
import { cpuBetween, cpuSnapshot, runLoad, type LoadResult, type WarmupStats } from './load.js'
import { fmtMs, type Check, type RoundResult } from './report.js'
import { startService, type Service, type SigningKey } from './service.js'
import { distribution, now, type Distribution } from './ssf.js'
import { mixedSource, Workload } from './workload.js'

export const BALANCER_INSTANCES = 3
/** Pause between two /verify rounds of the propagation probe (each round asks every instance still accepting). */
const PROBE_DELAY_MS = 2
const PROPAGATION_TIMEOUT_MS = 5_000

/** Why the scenario cannot run here (no PostgreSQL, no nginx), or undefined when it can. */
export function balancerSkipReason(databaseUrl: string | undefined): string | undefined {
  if (!databaseUrl) return 'balancer skipped: PostgreSQL only (three instances share sessions through it; PGlite is one process)'
  const reason = skipReason(findNginx(), { authRequest: false })
  return reason ? `balancer skipped: ${reason}` : undefined
}

export interface BalancerOptions {
  readonly databaseUrl: string
  readonly db?: BenchDatabase
  readonly key: SigningKey
  /** The service settings every scenario runs with (rate limits, clean-up). */
  readonly serviceEnv: Record<string, string>
  readonly connections: number
  readonly duration: number
  readonly warmup: number
  /** Sessions made through nginx for the workload and the probe. */
  readonly sessions: number
  readonly users: number
  readonly loginConcurrency: number
  readonly propagationTries: number
  readonly propagationInterval: number
  readonly runId: string
  readonly log: (line: string) => void
}

export interface BalancerRound {
  readonly round: number
  readonly propagation: Distribution & { readonly timedOut: number, readonly errors: readonly string[], readonly delays: readonly number[] }
  /** Requests nginx sent to more than one instance (from its access log), and how many it logged. */
  readonly retried: number
  readonly logged: number
  /** Requests each instance answered, in the order of the instances. */
  readonly perInstance: readonly number[]
}

export interface BalancerResult {
  readonly result: RoundResult
  readonly warmupStats: WarmupStats
  readonly checks: Check[]
  readonly round: BalancerRound
}

export class BalancerScenario {
  private readonly rounds: BalancerRound[] = []
  private cleanedUp = false

  private constructor(
    private readonly options: BalancerOptions,
    private readonly instances: Service[],
    private readonly nginx: Nginx,
    private readonly dir: string,
    readonly gateway: string,
    private readonly workload: Workload,
    private readonly users: User[],
    private readonly nginxVersion: string,
    private readonly forgetExitHandler: () => void
  ) {}

  /** Starts the three instances and nginx, and makes the users and sessions through nginx. */
  static async start(options: BalancerOptions): Promise<BalancerScenario> {
    const nginxBin = findNginx()!
    const dir = mkdtempSync(path.join(tmpdir(), 'auth-bench-balancer-'))
    // nginx started as root runs its workers as nobody: they must be able to reach the temp paths.
    chmodSync(dir, 0o755)
    const nginxPort = await freePort()
    const gateway = `http://127.0.0.1:${nginxPort}`
    // One deployment: the same key and issuer everywhere (the balancer's URL is the public one),
    // and nginx's address trusted for X-Forwarded-For (docs/gateway.md).
    const env = { ...options.serviceEnv, PUBLIC_URL: gateway, TRUST_PROXY: '127.0.0.1' }
    const started = await Promise.allSettled(Array.from({ length: BALANCER_INSTANCES }, () =>
      startService({ key: options.key, databaseUrl: options.databaseUrl, env })))
    const instances = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    if (instances.length < BALANCER_INSTANCES) {
      await Promise.all(instances.map((s) => s.stop()))
      rmSync(dir, { recursive: true, force: true })
      throw started.map((r) => (r.status === 'rejected' ? r.reason : undefined)).find(Boolean)
    }
    const ports = instances.map((s) => Number(new URL(s.url).port)) as [number, number, number]
    const confPath = path.join(dir, 'nginx.conf')
    writeFileSync(confPath, renderBalancerConfig(dir, { nginx: nginxPort, instances: ports }))
    let nginx: Nginx
    try {
      nginx = await startNginx(nginxBin, dir, confPath, gateway)
    } catch (err) {
      await Promise.all(instances.map((s) => s.stop()))
      rmSync(dir, { recursive: true, force: true })
      throw err
    }
    // nginx is not one of the bench's children (bench/lib/children.ts): gone when this process is.
    const killNginx = () => {
      try {
        process.kill(-nginx.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    process.once('exit', killNginx)
    const version = spawnSync(nginxBin, ['-v'], { encoding: 'utf8', timeout: 10_000 })
    const nginxVersion = /nginx\/[\d.]+/.exec(`${version.stdout ?? ''}${version.stderr ?? ''}`)?.[0] ?? 'nginx'

    const users: User[] = Array.from({ length: options.users }, (_, i) => ({
      email: `bench-${options.runId}-balancer-${i}@example.com`,
      password: `pw-${options.runId}-${i}-balancer`
    }))
    const scenario = new BalancerScenario(options, instances, nginx, dir, gateway, new Workload(users), users, nginxVersion,
      () => process.removeListener('exit', killNginx))
    try {
      await scenario.makeSessions()
    } catch (err) {
      await scenario.stop()
      throw err
    }
    return scenario
  }

  private async makeSessions(): Promise<void> {
    const { options, gateway, workload, users } = this
    const wanted = Math.max(options.sessions, users.length)
    const sessions: Session[] = await mapLimit(users, options.loginConcurrency, (user) => register(gateway, user))
    await mapLimit(Array.from({ length: wanted - users.length }, (_, i) => users[i % users.length]), options.loginConcurrency,
      async (user) => {
        sessions.push(await login(gateway, user))
      })
    const hot = Math.min(sessions.length - 1, Math.max(2 * options.connections + 10, Math.floor(sessions.length / 2)))
    sessions.forEach((session, i) => (i < hot ? workload.addHot(session) : workload.addSpare(session)))
    options.log(`  balancer: ${BALANCER_INSTANCES} instances (${this.instances.map((s) => s.url).join(', ')}) behind ${this.nginxVersion} at ${gateway}; ` +
      `${sessions.length} sessions made through it, ${hot} hot`)
  }

  /** One round: the mixed workload through nginx, the propagation probe on the instances meanwhile. */
  async round(round: number): Promise<BalancerResult> {
    const { options, workload, gateway, instances } = this
    const checks: Check[] = []
    // Spare sessions the mixed workload never sees: out of the pool before it starts.
    const probeSessions = workload.takeSpare(Math.min(options.propagationTries, Math.floor(workload.spareCount / 2)))
    const logStart = this.logSize()
    const loggedOutBefore = workload.loggedOut.length
    const groups = new Set([...instances.map((s) => s.child.pid), this.nginx.pid])
    let cpuStart: ReturnType<typeof cpuSnapshot> | undefined
    let loadRunning = true
    const load = runLoad({
      url: gateway,
      connections: options.connections,
      warmup: options.warmup,
      duration: options.duration,
      next: mixedSource(workload)
    }).finally(() => (loadRunning = false))
    const probing = (async () => {
      await sleep(options.warmup * 1000 + 200)
      cpuStart = cpuSnapshot()
      return this.probe(probeSessions, () => loadRunning)
    })()
    const loaded = await load
    const cpuEnd = cpuSnapshot()
    const propagation = await probing
    await workload.settleLost(gateway)

    // The service's CPU: the three instances' process groups together, nginx's apart (in the notes).
    const seconds = (loaded.measuredTo - loaded.measuredFrom) / 1000
    const instancesCpu = cpuStart ? cpuBetween(cpuStart, cpuEnd, (p) => groups.has(p.group) && p.group !== this.nginx.pid) / seconds : Number.NaN
    const nginxCpu = cpuStart ? cpuBetween(cpuStart, cpuEnd, (p) => p.group === this.nginx.pid) / seconds : Number.NaN
    const result: LoadResult = { ...loaded, serverCpu: instancesCpu }

    const entries = parseBalancerLog(this.readLogFrom(logStart))
    const perInstance = instances.map((s) => {
      const addr = new URL(s.url).host
      return entries.filter((e) => e.attempts.at(-1)?.addr === addr).length
    })
    const retried = entries.filter((e) => e.attempts.length > 1).length

    // Every session the round logged out (through nginx, or by the probe on one instance) is
    // refused by every instance, asked directly.
    const ended = [...workload.loggedOut.slice(loggedOutBefore), ...propagation.loggedOut].map((s) => s.access)
    for (const [i, instance] of instances.entries()) {
      const dead = await checkAccessTokens(instance.url, ended, 401)
      checks.push({
        name: `balancer round ${round}: instance ${i + 1} refuses every session logged out on any instance`,
        ok: dead.matching === dead.checked,
        detail: `${dead.matching}/${dead.checked} access tokens answer 401 on its /verify` +
          (Object.keys(dead.others).length > 0 ? ` (others: ${Object.entries(dead.others).map(([c, n]) => `${c}×${n}`).join(' ')})` : '')
      })
    }
    const spread = distribution(propagation.delays)
    checks.push({
      name: `balancer round ${round}: every probed logout reached all ${BALANCER_INSTANCES} instances`,
      ok: propagation.timedOut === 0 && propagation.errors.length === 0 && spread.count > 0,
      detail: `${spread.count} logouts timed (${probeSessions.length} set aside; the run may end first) (p50 ${fmtMs(spread.p50)} ms, p99 ${fmtMs(spread.p99)} ms, max ${fmtMs(spread.max)} ms), ` +
        `${propagation.timedOut} not within ${PROPAGATION_TIMEOUT_MS} ms, ${propagation.errors.length} errors` +
        (propagation.errors.length > 0 ? ` (first: ${propagation.errors[0]})` : '')
    })
    const entry: BalancerRound = {
      round,
      propagation: { ...spread, timedOut: propagation.timedOut, errors: propagation.errors, delays: propagation.delays },
      retried,
      logged: entries.length,
      perInstance
    }
    this.rounds.push(entry)
    options.log(`    balancer: requests per instance ${perInstance.join(' / ')}, nginx retried ${retried} of ${entries.length}; ` +
      `instances' CPU ${instancesCpu.toFixed(2)} cores, nginx ${nginxCpu.toFixed(2)}; propagation p50 ${fmtMs(spread.p50)} ms, ` +
      `p99 ${fmtMs(spread.p99)} ms, max ${fmtMs(spread.max)} ms (${spread.count} tries)`)
    return {
      result: { round, result, warmupRequests: loaded.warmupStats.requests },
      warmupStats: loaded.warmupStats,
      checks,
      round: entry
    }
  }

  /**
   * For each session, one every propagationInterval ms while the load runs: /verify on every
   * instance (204: known live, and cached so), the logout on one instance (in turn), then /verify
   * on each instance still accepting it every PROBE_DELAY_MS until all three answer 401.
   */
  private async probe(sessions: readonly Session[], running: () => boolean): Promise<{ delays: number[], timedOut: number, errors: string[], loggedOut: Session[] }> {
    const { instances, options } = this
    const delays: number[] = []
    const errors: string[] = []
    const loggedOut: Session[] = []
    let timedOut = 0
    const verifyOn = async (i: number, token: string): Promise<number> => {
      const response = await fetch(`${instances[i].url}${API}/verify`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5_000)
      })
      await response.arrayBuffer()
      return response.status
    }
    for (const [k, session] of sessions.entries()) {
      if (!running()) break
      const started = now()
      try {
        const before = await Promise.all(instances.map((_, i) => verifyOn(i, session.access)))
        if (before.some((status) => status !== 204)) {
          errors.push(`before the logout /verify answered ${before.join(', ')}`)
          continue
        }
        const origin = k % instances.length
        const response = await fetch(`${instances[origin].url}${API}/logout`, {
          method: 'POST',
          headers: { authorization: `Bearer ${session.access}` },
          signal: AbortSignal.timeout(10_000)
        })
        await response.arrayBuffer()
        if (response.status !== 204) {
          errors.push(`logout on instance ${origin + 1} answered ${response.status}`)
          continue
        }
        const ended = now()
        loggedOut.push(session)
        const pending = new Set(instances.map((_, i) => i))
        for (;;) {
          const statuses = await Promise.all([...pending].map(async (i) => [i, await verifyOn(i, session.access)] as const))
          for (const [i, status] of statuses) {
            if (status === 401) pending.delete(i)
            else if (status !== 204) errors.push(`instance ${i + 1} answered ${status}`)
          }
          if (pending.size === 0) {
            delays.push(now() - ended)
            break
          }
          if (now() - ended >= PROPAGATION_TIMEOUT_MS) {
            timedOut++
            break
          }
          await sleep(PROBE_DELAY_MS)
        }
      } catch (error) {
        errors.push(`${(error as Error).name}: ${(error as Error).message}`)
      } finally {
        const spent = now() - started
        if (spent < options.propagationInterval && running()) await sleep(options.propagationInterval - spent)
      }
    }
    return { delays, timedOut, errors, loggedOut }
  }

  /** The Markdown section of the report (also printed). */
  section(): string {
    const lines = [
      `Balancer: ${BALANCER_INSTANCES} instances (src/server.ts, each its own process, one PostgreSQL) behind ${this.nginxVersion} configured by ` +
      `\`${BALANCER_EXAMPLE}\` (only addresses and paths swapped), the mixed workload through nginx (${this.options.connections} connections). ` +
      'Meanwhile, logouts of sessions the workload never uses, one every ' +
      `${this.options.propagationInterval} ms, each sent to one instance directly (in turn); the window is the time from its 204 until ` +
      `\`/verify\` on all ${BALANCER_INSTANCES} instances, asked directly every ${PROBE_DELAY_MS} ms, answered 401 (so it includes up to one round of ` +
      'those requests). Every session logged out in the round is then checked on every instance.',
      '',
      '| round | requests per instance | retried by nginx | logouts timed | p50 ms | p99 ms | max ms | not in time | errors |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|'
    ]
    for (const r of this.rounds) {
      lines.push(`| ${r.round} | ${r.perInstance.join(' / ')} | ${r.retried} of ${r.logged} | ${r.propagation.count} | ${fmtMs(r.propagation.p50)} | ` +
        `${fmtMs(r.propagation.p99)} | ${fmtMs(r.propagation.max)} | ${r.propagation.timedOut} | ${r.propagation.errors.length} |`)
    }
    if (this.rounds.length > 1) {
      const pooled = distribution(this.rounds.flatMap((r) => r.propagation.delays))
      lines.push(`| all | | ${this.rounds.reduce((n, r) => n + r.retried, 0)} | ${pooled.count} | ${fmtMs(pooled.p50)} | ${fmtMs(pooled.p99)} | ${fmtMs(pooled.max)} | | |`)
    }
    return lines.join('\n')
  }

  /** Stops nginx and the instances, and removes the scenario's users (with their sessions and events). */
  async stop(): Promise<void> {
    if (this.cleanedUp) return
    this.cleanedUp = true
    await this.nginx.stop()
    this.forgetExitHandler()
    await Promise.all(this.instances.map((s) => s.stop()))
    rmSync(this.dir, { recursive: true, force: true })
    const ids = this.users.map((u) => u.id).filter((id): id is string => Boolean(id))
    if (this.options.db && ids.length > 0) {
      try {
        await this.options.db.deleteUsers(ids)
      } catch (err) {
        this.options.log(`warning: could not remove the balancer scenario's users: ${(err as Error).message}`)
      }
    }
  }

  private logSize(): number {
    try {
      return readFileSync(path.join(this.dir, 'access.log')).length
    } catch {
      return 0
    }
  }

  private readLogFrom(offset: number): string {
    try {
      return readFileSync(path.join(this.dir, 'access.log')).subarray(offset).toString('utf8')
    } catch {
      return ''
    }
  }
}
