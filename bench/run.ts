// `npm run bench`: the benchmark a user of the service would write. Starts the service and the
// baselines as child processes on 127.0.0.1, creates users and sessions through the HTTP API,
// measures each scenario with autocannon and writes the results to bench/results/.
// Options: see bench/README.md (BENCH_* environment variables or --flags).
import { randomBytes, randomUUID } from 'node:crypto'
import { cpus } from 'node:os'
import path from 'node:path'
import { createSigner } from 'fast-jwt'
import { generateClientSecret, hashClientSecret } from '../src/auth/service-clients.js'
import { defaultPasswordHashConcurrency } from '../src/config.js'
import { hashPassword } from '../src/services/passwords.js'
import { installCleanupHandlers, ROOT, sleep, stopAllChildren } from './lib/children.js'
import { BenchDatabase } from './lib/db.js'
import { fixtureSessions } from './lib/fixtures.js'
import { API, checkAccessTokens, login, machineToken, mapLimit, register, type Session, type User } from './lib/http.js'
import { cpuBetween, cpuSnapshot, runLoad, stopCurrentLoad, type LoadResult, type Op, type OpSource, type WarmupStats } from './lib/load.js'
import { OptionError, OptionSource, readFlags } from './lib/options.js'
import {
  cpuDescription, gitCommit, loadAverage, markdownReport, median, resultsTable, kindsTable, shapeLine, shapeNote, shapeRound, shapeSummary, summarise,
  fmtMs, propagationSection, streamsLine, streamsSection, type PropagationRound, type StreamsRound,
  writeResults, type Check, type Meta, type RoundResult, type ShapeRuns, type Summary, log, reportFailures
} from './lib/report.js'
import {
  ALGORITHMS, DEFAULT_ALGORITHM, clusterEntryExists, generateKey, migrate, startBaseline, startService,
  type Algorithm, type Baseline, type BaselineName, type Service, type SigningKey
} from './lib/service.js'
import {
  distribution, downstreamStatuses, now, probePropagation, readVmRss, startDownstream, startReceivers, streamsViaApi, waitForQuiet,
  type Downstream, type PropagationResult, type Receivers
} from './lib/ssf.js'
import { mixedSource, Workload } from './lib/workload.js'
import { SCALE_SCENARIOS, ScaleScenarios } from './lib/scale.js'
import { BalancerScenario, balancerSkipReason } from './lib/balancer.js'

const TARGETS = ['verify', 'introspect', 'introspect-bearer', 'me', 'downstream', 'refresh', 'login', 'mixed', 'balancer', 'streams', ...SCALE_SCENARIOS, 'logout'] as const
/** The scenarios measured against verify and the HTTP-shape ceiling (bench/README.md). */
const INTROSPECTIONS = ['introspect', 'introspect-bearer'] as const
type Scenario = (typeof TARGETS)[number]
/** Where load goes: a URL, and the process group whose CPU is measured. */
interface Target {
  readonly url: string
  readonly pid: number
}

interface Options {
  smoke: boolean
  duration: number
  warmup: number
  connections: number
  rounds: number
  scenarios: Scenario[]
  baselines: boolean
  workers: number
  algorithm: Algorithm
  sessions: number
  users: number
  loginConcurrency: number
  argon2Seconds: number
  nodeArgs: string[]
  keepData: boolean
  resultsDir: string
  databaseUrl: string | undefined
  /** Rate limits on, set so high that they never refuse: the limiter's cost is measured too. */
  rateLimit: boolean
  /** The streams scenario: poll streams created, logouts per phase, logouts whose fan-out is timed. */
  streams: number
  streamsLogouts: number
  fanoutLogouts: number
  /** Propagation to the downstream during mixed: tries per round, ms from one to the next. */
  propagationTries: number
  propagationInterval: number
}

function readOptions(): Options {
  const source = new OptionSource({ ...process.env, ...readFlags(process.argv.slice(2), 'BENCH') })
  const smoke = source.bool('BENCH_SMOKE')
  const scenarioList = source.string('BENCH_SCENARIOS', TARGETS.join(','))
  const scenarios = scenarioList.split(',').map((s) => s.trim()).filter(Boolean)
  for (const name of scenarios) {
    if (!(TARGETS as readonly string[]).includes(name)) {
      throw new OptionError(`BENCH_SCENARIOS: unknown scenario "${name}" (known: ${TARGETS.join(', ')})`)
    }
  }
  const algorithm = source.string('BENCH_ALG', DEFAULT_ALGORITHM) as Algorithm
  if (!ALGORITHMS.includes(algorithm)) throw new OptionError(`BENCH_ALG must be one of ${ALGORITHMS.join(', ')}`)
  const duration = source.seconds('BENCH_DURATION', smoke ? 1 : 10)
  if (duration <= 0) throw new OptionError('BENCH_DURATION must be more than 0')
  const databaseUrl = process.env.DATABASE_URL?.trim() || undefined
  const workers = source.int('BENCH_WORKERS', 0)
  if (workers > 0 && !databaseUrl) {
    throw new OptionError('BENCH_WORKERS needs DATABASE_URL: instances only share sessions through PostgreSQL')
  }
  return {
    smoke,
    duration,
    warmup: source.seconds('BENCH_WARMUP', smoke ? 0 : 3),
    connections: source.int('BENCH_CONNECTIONS', 10, 1),
    rounds: source.int('BENCH_ROUNDS', 1, 1),
    // Keep TARGETS order whatever order they were listed in: logout consumes sessions last.
    scenarios: TARGETS.filter((t) => scenarios.includes(t)),
    baselines: source.bool('BENCH_BASELINES', true),
    workers,
    algorithm,
    sessions: source.int('BENCH_SESSIONS', smoke ? 60 : 2000, 1),
    users: source.int('BENCH_USERS', smoke ? 4 : 8, 1),
    loginConcurrency: source.int('BENCH_LOGIN_CONCURRENCY', 8, 1),
    argon2Seconds: source.seconds('BENCH_ARGON2_SECONDS', smoke ? 1 : Math.min(5, duration)),
    nodeArgs: source.optionalString('BENCH_NODE_ARGS')?.split(/\s+/) ?? [],
    keepData: source.bool('BENCH_KEEP_DATA'),
    resultsDir: path.resolve(ROOT, source.string('BENCH_RESULTS_DIR', 'bench/results')),
    databaseUrl,
    rateLimit: source.bool('BENCH_RATE_LIMIT'),
    streams: source.int('BENCH_STREAMS', smoke ? 20 : 1000, 1),
    // On PGlite every woken poll's queries wait on its one connection: a logout with 1000 streams
    // waiting takes seconds there (bench/README.md, "streams").
    streamsLogouts: source.int('BENCH_STREAMS_LOGOUTS', smoke || !databaseUrl ? 10 : 200, 1),
    fanoutLogouts: source.int('BENCH_FANOUT_LOGOUTS', smoke ? 2 : 5, 1),
    propagationTries: source.int('BENCH_PROPAGATION_TRIES', smoke ? 5 : 40, 0),
    propagationInterval: source.int('BENCH_PROPAGATION_INTERVAL', 150, 10)
  }
}

/** Every client of the bench is 127.0.0.1: limits it can never reach, so none refuses a request. */
const UNREACHABLE_LIMIT = '1000000000'

function serviceEnv(options: Options): Record<string, string> {
  return {
    SESSION_CLEANUP_INTERVAL: '0',
    ...(options.rateLimit ? { RATE_LIMIT: 'on', RATE_LIMIT_IP_MAX: UNREACHABLE_LIMIT, RATE_LIMIT_ACCOUNT_MAX: UNREACHABLE_LIMIT } : {})
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const fmtRatioText = (n: number | null) => (n === null || !Number.isFinite(n) ? 'n/a' : `${n.toFixed(n > 0 && n < 0.1 ? 3 : 2)}×`)

/** introspect's target (bench/README.md): at least this share of verify's req/s in the same round (introspect-bearer's too). */
const INTROSPECT_TARGET = 0.8
/** The downstream scenario's target: /protected (the verifier) at least this share of /bare (jose alone) in the same round. */
const DOWNSTREAM_TARGET = 0.9
/** The service's SSF_MAX_STREAMS_PER_CLIENT default (docs/ssf.md). */
const STREAMS_PER_CLIENT = 1000
/** The propagation probe: pause between two requests to /protected with the same token, and how long a try may take. */
const PROBE_DELAY_MS = 2
const PROPAGATION_TIMEOUT_MS = 5_000

/** The raw argon2id ceiling: hashes/s with the service's parameters, `inFlight` at a time. */
async function argon2Ceiling(seconds: number, inFlight: number): Promise<number> {
  let done = 0
  const started = process.hrtime.bigint()
  const end = Date.now() + seconds * 1000
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (Date.now() < end) {
      await hashPassword(randomBytes(12).toString('base64url'))
      done++
    }
  }))
  return done / (Number(process.hrtime.bigint() - started) / 1e9)
}

async function main(): Promise<number> {
  let options: Options
  try {
    options = readOptions()
  } catch (err) {
    if (err instanceof OptionError) {
      console.error(err.message)
      return 2
    }
    throw err
  }
  installCleanupHandlers(stopCurrentLoad)

  const startedAt = new Date().toISOString()
  const loadBefore = loadAverage()
  if (loadBefore > cpus().length * 0.5) {
    log(`warning: the machine is busy (1-min load average ${loadBefore.toFixed(2)} on ${cpus().length} CPUs): results will be noisy`)
  }
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
  const engine = options.databaseUrl ? 'postgres' : 'pglite'
  const metaNotes: string[] = []
  let workers = options.workers
  if (workers > 0 && !clusterEntryExists()) {
    metaNotes.push(`BENCH_WORKERS=${workers} asked for, but src/cluster.ts does not exist: ran the single-process src/server.ts`)
    log(`note: ${metaNotes.at(-1)}`)
    workers = 0
  }
  if (workers > 0) metaNotes.push(`baselines ran with the same number of node:cluster workers (${workers})`)

  log(`auth-service benchmark: ${engine}, ${options.algorithm}, ${options.connections} connections, ` +
    `${options.warmup} s warm-up + ${options.duration} s per scenario, ${options.rounds} round(s)${options.smoke ? ' [smoke]' : ''}`)
  // The HTTP-shape ceiling's two baselines only matter next to an introspection scenario.
  const shapeBaselines = options.scenarios.some((t) => (INTROSPECTIONS as readonly string[]).includes(t))
  const baselineNames: BaselineName[] = options.baselines
    ? ['hello', ...(shapeBaselines ? ['hello-204', 'hello-form-json'] as const : []), 'jwt', ...(options.databaseUrl ? ['jwt-pg-delete'] as const : [])]
    : []
  log(`scenarios: ${options.scenarios.join(', ') || '(none)'}${options.baselines ? `; baselines: ${baselineNames.join(', ')}` : ''}`)

  const key: SigningKey = generateKey(options.algorithm)
  const db = options.databaseUrl ? new BenchDatabase(options.databaseUrl) : undefined
  const users: User[] = []
  let baselineUserId: string | undefined
  /** The bench's machine clients: their streams are deleted at the end on PostgreSQL, whatever happened. */
  const benchClientIds: string[] = []
  let downstream: Downstream | undefined
  let receivers: Receivers | undefined
  /** flood, curves, logout-all, cleanup (bench/lib/scale.ts). */
  let scale: ScaleScenarios | undefined
  /** Three instances behind nginx (bench/lib/balancer.ts), started at its first round. */
  let balancer: BalancerScenario | undefined
  const failures: string[] = []
  const checks: Check[] = []
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail })
    if (!ok) failures.push(`check failed: ${name}: ${detail}`)
    log(`  ${ok ? 'ok' : 'FAILED'}: ${name}: ${detail}`)
  }

  try {
    if (options.databaseUrl) {
      log('migrating (npm run migrate)...')
      log(`  ${(await migrate(options.databaseUrl)).split('\n').at(-1)}`)
    }

    // --- processes -----------------------------------------------------------------------------
    // The machine client of the introspect scenario, declared as an operator would
    // (docs/clients.md): a fresh 256-bit secret, its hash in the service's clients file. The
    // service always gets it, so every scenario runs against the same configuration.
    const benchClient = { id: `bench-${runId}`, secret: generateClientSecret() }
    const introspectAuthorization = `Basic ${Buffer.from(`${benchClient.id}:${benchClient.secret}`).toString('base64')}`
    // What the hello-form-json baseline gets instead: a Basic header of the same length (it checks
    // nothing, and the client's secret goes to the service only).
    const standInAuthorization = `Basic ${Buffer.from(`${benchClient.id}:${'x'.repeat(benchClient.secret.length)}`).toString('base64')}`
    // The same client is the downstream verifier's (its own SSF poll stream: ssf.read ssf.manage).
    // The streams scenario's receivers get clients of their own, at most SSF_MAX_STREAMS_PER_CLIENT
    // (1000 by default) streams each.
    const streamClients = options.scenarios.includes('streams')
      ? Array.from({ length: Math.ceil(options.streams / STREAMS_PER_CLIENT) }, (_, i) => ({
          id: `bench-${runId}-streams-${i}`,
          secret: generateClientSecret(),
          count: Math.min(STREAMS_PER_CLIENT, options.streams - i * STREAMS_PER_CLIENT)
        }))
      : []
    const serviceClients = [
      { client_id: benchClient.id, client_secret_hash: hashClientSecret(benchClient.secret), scope: 'introspect ssf.read ssf.manage' },
      ...streamClients.map((c) => ({ client_id: c.id, client_secret_hash: hashClientSecret(c.secret), scope: 'ssf.read ssf.manage' }))
    ]
    benchClientIds.push(benchClient.id, ...streamClients.map((c) => c.id))
    log(`starting the service${workers > 0 ? ` (${workers} workers)` : ''} and the baselines on 127.0.0.1...`)
    const [service, ...baselineList] = await Promise.all([
      startService({ key, databaseUrl: options.databaseUrl, workers, nodeArgs: options.nodeArgs, env: serviceEnv(options), serviceClients }),
      ...baselineNames.map((name) => startBaseline(name, key, options.databaseUrl, workers))
    ]) as [Service, ...Baseline[]]
    const baselines = new Map(baselineList.map((b) => [b.name, b]))
    log(`  service ${service.url} (pid ${service.pid}, ${service.entry})${baselineList.map((b) => `, ${b.name} ${b.url}`).join('')}`)

    // --- argon2id ceiling: measured right before each login run (the machine's speed drifts) ----
    // As many in flight as the service hashes at once (its PASSWORD_HASH_CONCURRENCY default, the
    // cores less one): the bound is the service's design, and the ceiling is what hashing within it allows.
    const argon2Rates = new Map<number, number>()
    const hashInFlight = defaultPasswordHashConcurrency()
    const measureArgon2 = async (round: number) => {
      const rate = await argon2Ceiling(options.argon2Seconds, hashInFlight)
      argon2Rates.set(round, rate)
      log(`  argon2id ceiling  ${fmt(rate).padStart(8)} hashes/s  (in-process, ${hashInFlight} in flight, ${options.argon2Seconds} s)`)
    }

    // --- users and sessions, through the API ----------------------------------------------------
    const setupStarted = Date.now()
    for (let i = 0; i < options.users; i++) {
      users.push({ email: `bench-${runId}-${i}@example.com`, password: `pw-${randomBytes(12).toString('base64url')}` })
    }
    const workload = new Workload(users)
    const wanted = Math.max(options.sessions, options.users)
    const hotCount = Math.min(wanted, 1000, Math.max(2 * options.connections + 10, Math.floor(wanted / 2)))
    log(`setup: registering ${options.users} users, then ${wanted - options.users} logins (${options.loginConcurrency} at a time)...`)
    const sessions: Session[] = await mapLimit(users, options.loginConcurrency, (user) => register(service.url, user))
    let lastReport = Date.now()
    await mapLimit(Array.from({ length: wanted - options.users }, (_, i) => users[i % users.length]), options.loginConcurrency,
      async (user) => {
        sessions.push(await login(service.url, user))
        if (Date.now() - lastReport > 5_000) {
          lastReport = Date.now()
          log(`  ... ${fmt(sessions.length)} sessions`)
        }
      })
    sessions.forEach((session, i) => (i < hotCount ? workload.addHot(session) : workload.addSpare(session)))
    const setupSeconds = (Date.now() - setupStarted) / 1000
    log(`  ${fmt(sessions.length)} sessions in ${setupSeconds.toFixed(1)} s (${fmt(sessions.length / setupSeconds)}/s); ` +
      `${hotCount} for verify/me/refresh, ${sessions.length - hotCount} spare for logout`)
    if (hotCount <= options.connections && (options.scenarios.includes('refresh') || options.scenarios.includes('mixed'))) {
      metaNotes.push(`only ${hotCount} sessions for ${options.connections} connections: some refreshes were replaced by verifies`)
    }
    const userIds = users.map((u) => u.id!).filter(Boolean)

    // --- the downstream process: the downstream scenario, and the propagation probe of mixed --------
    const wantsDownstream = options.scenarios.includes('downstream') || (options.scenarios.includes('mixed') && options.propagationTries > 0)
    if (wantsDownstream && options.algorithm === 'HS256') {
      metaNotes.push('downstream and propagation skipped: with HS256 the JWKS is empty, so the verifier can verify neither tokens nor SETs')
      log(`note: ${metaNotes.at(-1)}`)
    } else if (wantsDownstream) {
      // The tokens' iss and aud: JWT_ISSUER (passed through) or the service's PUBLIC_URL, JWT_AUDIENCE or 'api'.
      const issuer = process.env.JWT_ISSUER?.trim() || service.url
      const audience = process.env.JWT_AUDIENCE?.trim() || 'api'
      log('starting the downstream service (the verifier with its own SSF poll stream, and bare jose)...')
      downstream = await startDownstream(issuer, audience, benchClient)
      log(`  downstream ${downstream.url} (pid ${downstream.child.pid}), audience ${audience}`)
    }

    if (db && baselines.has('jwt-pg-delete')) baselineUserId = await db.createBaselineUser(`bench-${runId}-baseline@example.com`)
    scale = new ScaleScenarios({
      smoke: options.smoke, key, databaseUrl: options.databaseUrl, db, runId, connections: options.connections,
      warmup: options.warmup, duration: options.duration, service, jwt: baselines.get('jwt'), hot: workload.hot, check, note: (text) => metaNotes.push(text)
    })

    // --- measuring ------------------------------------------------------------------------------
    const results = new Map<string, RoundResult[]>()
    const notes = new Map<string, string[]>()
    const addNote = (name: string, note: string) => {
      const list = notes.get(name) ?? []
      if (!list.includes(note)) list.push(note)
      notes.set(name, list)
    }
    const serviceWindow = (r: LoadResult): [number, number] =>
      [(r.measuredFrom - service.spawnedAt) / 1000, (r.measuredTo - service.spawnedAt) / 1000]
    const record = (name: string, round: RoundResult) => {
      results.set(name, [...(results.get(name) ?? []), round])
      const r = round.result
      log(`  ${name.padEnd(14)} ${(r.reqPerSec > 0 && r.reqPerSec < 10 ? r.reqPerSec.toFixed(2) : fmt(r.reqPerSec)).padStart(8)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ` +
        `${fmt(r.requests)} requests in ${r.elapsedSec.toFixed(1)} s, errors ${r.errors}, non-2xx ${r.non2xx} (unexpected ${r.unexpected}), ` +
        `CPU server ${r.serverCpu.toFixed(2)} bench ${r.clientCpu.toFixed(2)}${options.databaseUrl ? ` postgres ${r.postgresCpu.toFixed(2)}` : ''}` +
        `${round.amount !== undefined ? `, amount ${round.amount}` : ''}` +
        `${options.nodeArgs.length > 0 && round.window ? `, ${round.window[0].toFixed(1)}-${round.window[1].toFixed(1)} s after the service started` : ''}`)
      if (r.unexpected > 0) {
        const statuses = Object.entries(r.status).filter(([code]) => !/^2\d\d$/.test(code)).map(([c, n]) => `${c}×${n}`).join(' ')
        log(`    unexpected statuses: ${statuses}`)
      }
    }

    const warmupTrouble = (name: string, round: number, warm: WarmupStats) => {
      if (warm.errors + warm.unexpected + warm.status5xx === 0) return
      addNote(name, `warm-up of round ${round}: ${warm.errors} errors, ${warm.status5xx} 5xx, ${warm.unexpected} unexpected`)
      failures.push(`${name} warm-up (round ${round}): ${warm.errors} errors, ${warm.status5xx} 5xx, ${warm.unexpected} unexpected statuses`)
    }

    /** One run: the warm-up (not counted), then the measured part, both timed. */
    const timed = async (name: string, target: Target, next: OpSource, round: number, settle?: () => Promise<void>) => {
      if (db) await vacuumQuietly(db)
      const result = await runLoad({
        url: target.url, connections: options.connections, warmup: options.warmup, duration: options.duration, next, serverGroup: target.pid
      })
      await settle?.()
      warmupTrouble(name, round, result.warmupStats)
      record(name, { round, result, warmupRequests: result.warmupStats.requests, window: serviceWindow(result) })
      return result
    }

    /** Exactly one request per op (each a distinct session); the first `warmupCount` are the warm-up. */
    const counted = async (name: string, target: Target, ops: Op[], warmupCount: number, round: number,
      { timeout, connections = options.connections }: { timeout?: number, connections?: number } = {}): Promise<LoadResult> => {
      let i = 0
      const result = await runLoad({
        url: target.url, connections, amount: ops.length, warmupAmount: warmupCount, next: () => ops[i++], serverGroup: target.pid, timeout
      })
      warmupTrouble(name, round, result.warmupStats)
      record(name, { round, result, warmupRequests: result.warmupStats.requests, amount: ops.length - warmupCount, window: serviceWindow(result) })
      return result
    }

    let jwtRateThisRound = Number.NaN
    const runBaselines = async (round: number) => {
      const hello = baselines.get('hello')
      if (hello) {
        await timed('hello', { url: hello.url, pid: hello.child.pid }, () => ({ kind: 'hello', method: 'GET', path: '/', expect: 200 }), round)
      }
      // The HTTP-shape ceiling, one right after the other: verify's requests to a bare 204, and
      // introspect's (same body, an Authorization header of the same length) to a bare form-to-JSON route.
      const plain204 = baselines.get('hello-204')
      if (plain204) {
        await timed('hello-204', { url: plain204.url, pid: plain204.child.pid }, () => ({ ...workload.verify(), kind: 'hello-204' }), round)
        addNote('hello-204', 'bare Fastify: verify\'s requests (GET, Bearer), 204 with x-user-id and x-session-id')
      }
      const formJson = baselines.get('hello-form-json')
      if (formJson) {
        await timed('hello-form-json', { url: formJson.url, pid: formJson.child.pid },
          () => ({ ...workload.introspect(standInAuthorization), kind: 'hello-form-json' }), round)
        addNote('hello-form-json', 'bare Fastify + @fastify/formbody: introspect\'s requests (POST, the same form body, a Basic header of the same length), ' +
          '200 with a fixed introspection-shaped JSON serialized through a response schema')
      }
      const jwt = baselines.get('jwt')
      if (jwt) {
        let i = 0
        const tokens = workload.hot.map((s) => s.access)
        const result = await timed('jwt', { url: jwt.url, pid: jwt.child.pid }, () => ({
          kind: 'jwt', method: 'GET', path: '/verify', headers: { authorization: `Bearer ${tokens[i++ % tokens.length]}` }, expect: 204
        }), round)
        jwtRateThisRound = result.reqPerSec
      }
      const pgDelete = baselines.get('jwt-pg-delete')
      if (pgDelete && db && baselineUserId) {
        // One fixture session (and one token) per request; verify-only throughput bounds how many
        // verify+DELETE requests can run, so that many fixtures always suffice.
        const rate = Number.isFinite(jwtRateThisRound) ? jwtRateThisRound : 20_000
        const needed = Math.min(400_000, Math.ceil(rate * (options.warmup + options.duration) * 1.1) + options.connections * 2)
        const ids = await db.createBaselineSessions(baselineUserId, needed)
        const sign = createSigner({
          key: key.signKey,
          algorithm: key.algorithm,
          header: { alg: key.algorithm, typ: 'at+jwt' },
          iss: 'auth-service',
          aud: 'api',
          expiresIn: 3_600_000
        })
        const tokens = ids.map((sid) => sign({ sub: baselineUserId, sid, client_id: 'auth-service', jti: randomUUID() }))
        let i = 0
        // Should the fixtures ever run out, tokens repeat: their rows are gone, the baseline
        // answers 404 and the run is reported as failed rather than quietly measuring less work.
        await timed('jwt-pg-delete', { url: pgDelete.url, pid: pgDelete.child.pid }, () => ({
          kind: 'jwt-pg-delete', method: 'POST', path: '/logout', headers: { authorization: `Bearer ${tokens[i++ % tokens.length]}` }, expect: 204
        }), round)
        addNote('jwt-pg-delete', `${fmt(needed)} fixture sessions per round`)
        await db.deleteSessionsOf(baselineUserId)
      }
    }

    const settle = () => workload.settleLost(service.url)

    const runTargets = async (round: number) => {
      for (const target of options.scenarios) {
        switch (target) {
          case 'verify':
            await timed('verify', service, () => workload.verify(), round)
            break
          case 'introspect':
            await timed('introspect', service, () => workload.introspect(introspectAuthorization), round)
            break
          case 'introspect-bearer': {
            // A machine token of the same client, fetched for the round (it must not expire during
            // the run): the verified-token cache knows it after the first request.
            const bearer = `Bearer ${await machineToken(service.url, introspectAuthorization, 'introspect')}`
            await timed('introspect-bearer', service, () => workload.introspect(bearer, 'introspect-bearer'), round)
            break
          }
          case 'me':
            await timed('me', service, () => workload.me(), round)
            break
          case 'refresh':
            await timed('refresh', service, () => workload.refresh(), round, settle)
            addNote('refresh', `rotates ${fmt(workload.hot.length)} sessions, each refresh token used once`)
            break
          case 'login':
            await measureArgon2(round)
            await timed('login', service, () => workload.login(), round, settle)
            break
          case 'downstream':
            await downstreamRound(round)
            break
          case 'mixed': {
            const before = workload.loggedOut.length
            // Spare sessions the mixed workload will never see: out of the pool before it starts.
            const probeSessions = downstream ? workload.takeSpare(Math.min(options.propagationTries, Math.floor(workload.spareCount / 2))) : []
            if (downstream && probeSessions.length < options.propagationTries) {
              addNote('mixed', `propagation: only ${probeSessions.length} of ${options.propagationTries} tries in round ${round} (spare sessions; raise BENCH_SESSIONS)`)
            }
            if (probeSessions.length > 0) {
              const alive = await downstreamStatuses(downstream!.url, '/protected', probeSessions.map((s) => s.access))
              check(`mixed round ${round}: the propagation probe's sessions are accepted downstream before their logout`, alive['204'] === probeSessions.length,
                `/protected: ${Object.entries(alive).map(([code, n]) => `${code}×${n}`).join(' ')}`)
            }
            let loadRunning = true
            const load = timed('mixed', service, mixedSource(workload), round, settle).finally(() => (loadRunning = false))
            const probing = probeSessions.length > 0
              ? sleep(options.warmup * 1000 + 200).then(() => probePropagation({
                  serviceUrl: service.url,
                  downstreamUrl: downstream!.url,
                  sessions: probeSessions,
                  intervalMs: options.propagationInterval,
                  probeDelayMs: PROBE_DELAY_MS,
                  timeoutMs: PROPAGATION_TIMEOUT_MS,
                  running: () => loadRunning
                }))
              : undefined
            await load
            const propagation = await probing
            const ended = workload.loggedOut.slice(before).map((s) => s.access)
            const dead = await checkAccessTokens(service.url, ended, 401)
            check(`mixed round ${round}: sessions it logged out are rejected`, dead.matching === dead.checked,
              `${dead.matching}/${dead.checked} access tokens answer 401 on /verify${describeOthers(dead.others)}`)
            if (propagation) await recordPropagation(round, propagation)
            break
          }
          case 'balancer': {
            const skip = balancerSkipReason(options.databaseUrl)
            if (skip) {
              if (!metaNotes.includes(skip)) {
                metaNotes.push(skip)
                log(`note: ${skip}`)
              }
              break
            }
            balancer ??= await BalancerScenario.start({
              databaseUrl: options.databaseUrl!, db, key, serviceEnv: serviceEnv(options), connections: options.connections,
              duration: options.duration, warmup: options.warmup, sessions: Math.min(options.sessions, 600), users: options.users,
              loginConcurrency: options.loginConcurrency, propagationTries: options.propagationTries,
              propagationInterval: options.propagationInterval, runId, log
            })
            if (db) await vacuumQuietly(db)
            const run = await balancer.round(round)
            warmupTrouble('balancer', round, run.warmupStats)
            record('balancer', run.result)
            for (const c of run.checks) check(c.name, c.ok, c.detail)
            break
          }
          case 'streams':
            await streamsRound(round)
            break
          case 'logout':
            await logoutRound(round)
            break
          default:
            await scale!.run(target, round)
        }
      }
    }

    const shapeRuns = (name: string): ShapeRuns => ({
      target: results.get(name) ?? [],
      verify: results.get('verify'),
      formJson: results.get('hello-form-json'),
      plain204: results.get('hello-204')
    })

    const logoutCounts: string[] = []
    const makeFixtures = db ? await fixtureSessions(db, key, service.url) : undefined

    /**
     * On PostgreSQL: a timed run like every other scenario, over fixture sessions (one per
     * request, made for this round). On PGlite the bench cannot reach the database, so the run
     * logs out a fixed share of the sessions made through the API.
     */
    const logoutRound = async (round: number) => {
      await sleep(500) // let requests cut off at the end of the previous run finish on the server
      const logoutsBefore = workload.logouts
      const settledBefore = workload.counters.settledLogout
      let sessionsBefore: number | undefined
      let used: Session[]
      let untouchedFixtures: Session[] = []
      if (makeFixtures && db) {
        // Verify-only throughput bounds how fast logouts can go, so this many always suffice.
        const rate = Number.isFinite(jwtRateThisRound) ? jwtRateThisRound : 20_000
        const needed = Math.min(400_000, Math.ceil(rate * (options.warmup + options.duration) * 1.1) + options.connections * 2)
        const fixtures = await makeFixtures(userIds, needed)
        sessionsBefore = await db.countSessions(userIds)
        let next = 0
        const loggedOutBefore = workload.loggedOut.length
        const unknownBefore = workload.unknown.length
        await timed('logout', service, () => (next < fixtures.length ? workload.logout(fixtures[next++]) : workload.verify()), round,
          settle)
        if (next >= fixtures.length) failures.push(`logout round ${round}: the ${fmt(needed)} fixture sessions ran out`)
        used = [...workload.loggedOut.slice(loggedOutBefore), ...workload.unknown.slice(unknownBefore)]
        untouchedFixtures = fixtures.slice(next)
        logoutCounts.push(`${fmt(next)} fixture sessions logged out (of ${fmt(needed)} made for the round)`)
      } else {
        const roundsLeft = options.rounds - round + 1
        const share = Math.floor(workload.spareCount / roundsLeft)
        const warmCount = options.warmup > 0 ? Math.floor(share * 0.2) : 0
        const measuredCount = share - warmCount
        if (measuredCount < 1) {
          failures.push(`logout round ${round}: no spare session left to log out (raise BENCH_SESSIONS)`)
          return
        }
        used = workload.takeSpare(share)
        const result = await counted('logout', service, used.map((s) => workload.logout(s)), warmCount, round)
        logoutCounts.push(`${fmt(measuredCount)} in ${result.elapsedSec.toFixed(1)} s after ${fmt(warmCount)} in warm-up`)
      }
      const answered204 = workload.logouts - logoutsBefore
      // Logouts cut off by the end of a timed run were retried (settleLost): each ended its session.
      const settled = workload.counters.settledLogout - settledBefore
      const ended = answered204 + settled
      const endedText = `${answered204} logouts answered 204 (warm-up included)${settled > 0 ? ` and ${settled} cut off and settled` : ''}`
      await sleep(200)
      if (db && sessionsBefore !== undefined) {
        const sessionsAfter = await db.countSessions(userIds)
        check(`logout round ${round}: rows deleted = logouts`, sessionsBefore - sessionsAfter === ended,
          `user_sessions rows of the bench's users: ${sessionsBefore} -> ${sessionsAfter} (${sessionsBefore - sessionsAfter} deleted), ` +
          endedText)
      }
      const usedTokens = used.map((s) => s.access)
      const dead = await checkAccessTokens(service.url, usedTokens, 401)
      check(`logout round ${round}: logged-out sessions are rejected`, dead.matching === usedTokens.length && ended === usedTokens.length,
        `${dead.matching}/${usedTokens.length} access tokens answer 401 on /verify${describeOthers(dead.others)}; ${endedText}`)
      const untouched = [...workload.hot, ...workload.spareSessions(), ...untouchedFixtures].map((s) => s.access)
      const alive = await checkAccessTokens(service.url, untouched, 204)
      check(`logout round ${round}: no other session was ended`, alive.matching === untouched.length,
        `${alive.matching}/${untouched.length} sessions not logged out still answer 204${describeOthers(alive.others)}`)
      // The round's unused fixtures are not left for the next round's checks to walk through.
      if (db && untouchedFixtures.length > 0) await db.deleteSessions(untouchedFixtures.map((f) => f.sid))
    }

    /** /protected (the verifier) and /bare (jose alone) in the same downstream process, one right after the other. */
    const downstreamRound = async (round: number) => {
      if (!downstream) {
        addNote('downstream', 'not run: no downstream process (HS256)')
        return
      }
      const target = { url: downstream.url, pid: downstream.child.pid }
      const tokens = workload.hot.map((s) => s.access)
      const source = (kind: string, path: string): OpSource => {
        let i = 0
        return () => ({ kind, method: 'GET', path, headers: { authorization: `Bearer ${tokens[i++ % tokens.length]}` }, expect: 204 })
      }
      const bare = () => timed('downstream-bare', target, source('downstream-bare', '/bare'), round)
      const guarded = () => timed('downstream', target, source('downstream', '/protected'), round)
      if (round % 2 === 1) {
        await bare()
        await guarded()
      } else {
        await guarded()
        await bare()
      }
      addNote('downstream-bare', 'the downstream process\'s GET /bare: jose jwtVerify with the service\'s JWKS fetched once (createLocalJWKSet), ' +
        'the verifier\'s checks (typ at+jwt, iss, aud, algorithms, age, required claims), no revocation; the same tokens as downstream')
      const ratio = sameRoundRatio((results.get('downstream') ?? []).filter((r) => r.round === round),
        new Map((results.get('downstream-bare') ?? []).map((r) => [r.round, r.result.reqPerSec])))
      const perCpu = perCpuRatio((results.get('downstream') ?? []).filter((r) => r.round === round), results.get('downstream-bare') ?? [])
      log(`  round ${round}: downstream ÷ downstream-bare ${fmtRatioText(ratio)} ` +
        `(target ≥ ${DOWNSTREAM_TARGET}×: ${ratio === null ? 'n/a' : ratio >= DOWNSTREAM_TARGET ? 'met' : 'not met'}); per CPU-second of the downstream process ${fmtRatioText(perCpu)}`)
    }

    const propagationRounds: PropagationRound[] = []
    /** The probe's figures for one mixed round, and its checks: every logout reached the downstream, and the service. */
    const recordPropagation = async (round: number, probe: PropagationResult) => {
      for (const session of probe.untried) workload.addSpare(session)
      const figures = distribution(probe.delays)
      propagationRounds.push({ round, ...figures, timedOut: probe.timedOut, errors: probe.errors.length, delays: probe.delays })
      log(`  propagation    ${String(figures.count).padStart(8)} logouts  p50 ${fmtMs(figures.p50)} ms  p99 ${fmtMs(figures.p99)} ms  ` +
        `max ${fmtMs(figures.max)} ms  (204 of the logout -> first 401 "session has ended" from the downstream's /protected, under mixed)`)
      check(`mixed round ${round}: every propagation logout reached the downstream`,
        probe.delays.length === probe.loggedOut.length && probe.errors.length === 0,
        `${probe.delays.length}/${probe.loggedOut.length} logged-out tokens refused by /protected within ${PROPAGATION_TIMEOUT_MS} ms, ` +
        `${probe.timedOut} not in time${probe.errors.length > 0 ? `; errors: ${[...new Set(probe.errors)].slice(0, 3).join('; ')}` : ''}`)
      const dead = await checkAccessTokens(service.url, probe.loggedOut.map((s) => s.access), 401)
      check(`mixed round ${round}: the propagation probe's sessions are rejected by the service`, dead.matching === dead.checked,
        `${dead.matching}/${dead.checked} access tokens answer 401 on /verify${describeOthers(dead.others)}`)
    }

    const streamRounds: StreamsRound[] = []
    /** Sessions of the bench's users for the streams scenario only: fixtures on PostgreSQL, logins on PGlite. */
    const freshSessions = async (count: number): Promise<Session[]> => {
      if (makeFixtures) return makeFixtures(userIds, count)
      return mapLimit(Array.from({ length: count }, (_, i) => users[i % users.length]), options.loginConcurrency, (user) => login(service.url, user))
    }

    /**
     * The cost of many streams (bench/README.md): logouts with no stream of the bench's, the same
     * with `options.streams` long polls waiting, the fan-out of single logouts to every stream, the
     * service's RSS and the rows, then the streams deleted.
     */
    const streamsRound = async (round: number) => {
      const n = options.streams
      const perPhase = options.streamsLogouts
      const others = downstream ? ' (and the downstream verifier\'s one)' : ''
      const sessionsNeeded = 2 * perPhase + options.fanoutLogouts
      log(`  streams: ${fmt(sessionsNeeded)} sessions ${makeFixtures ? 'as fixtures' : 'by login'}, then ${fmt(perPhase)} logouts with no stream of the bench's${others}...`)
      const fresh = await freshSessions(sessionsNeeded)
      const [quiet, loaded, single] = [fresh.slice(0, perPhase), fresh.slice(perPhase, 2 * perPhase), fresh.slice(2 * perPhase)]
      const warmCount = options.warmup > 0 ? Math.floor(perPhase * 0.1) : 0
      const withoutName = 'logout @ 0 streams'
      const withName = `logout @ ${n} streams`
      await waitForQuiet(service.child.pid)
      const rssBefore = readVmRss(service.pid)
      // PostgreSQL: BENCH_CONNECTIONS at a time. PGlite: one at a time, in both phases. Its one
      // connection serializes every query anyway, and with 1000 streams ten logouts in flight queue
      // behind each other's fan-outs for up to a minute (bench/README.md, "streams").
      const connections = db ? options.connections : 1
      await counted(withoutName, service, quiet.map((s) => workload.logout(s)), warmCount, round, { connections })

      receivers ??= await startReceivers()
      log(`  streams: creating ${fmt(n)} poll streams (${streamClients.length} client(s)), each then long-polling...`)
      const created = await receivers.start(service.url, streamClients)
      log(`    ${fmt(created.streams)} streams created and polling in ${(created.ms / 1000).toFixed(1)} s`)
      check(`streams round ${round}: ${fmt(n)} streams created`, created.streams === n, `${created.streams} created and long-polling`)
      await waitForQuiet(service.child.pid)
      const rssWith = readVmRss(service.pid)
      const streamRows = db ? await db.countStreams(streamClients.map((c) => c.id)) : await streamsViaApi(service.url, streamClients)

      await receivers.mark()
      let rssPeak = readVmRss(service.pid)
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, readVmRss(service.pid))), 100)
      const receiversBefore = cpuSnapshot()
      const logoutsBefore = workload.logouts
      // A longer request timeout than autocannon's 10 s: a logout waits behind the woken polls' queries.
      const loadedResult = await counted(withName, service, loaded.map((s) => workload.logout(s)), warmCount, round, { timeout: 60, connections })
        .finally(() => clearInterval(sampler))
      // Every stream gets the event of every logout answered 204 (warm-up included), at least once: bounded wait.
      const ended = workload.logouts - logoutsBefore
      // ended × streams SETs (200,000 with the defaults): delivering them takes far longer than the logouts.
      const deliveryStarted = Date.now()
      const counts = await receivers.counts(ended, 180_000)
      const deliveredInS = (Date.now() - deliveryStarted) / 1000
      const receiversCpu = cpuBetween(receiversBefore, cpuSnapshot(), (p) => p.group === receivers!.child.pid) /
        Math.max(0.001, (loadedResult.measuredTo - loadedResult.measuredFrom) / 1000)
      check(`streams round ${round}: every stream received every logout's event`, counts.min >= ended,
        `${fmt(ended)} of ${fmt(perPhase)} logouts answered 204 with ${fmt(counts.streams)} streams waiting: SETs per stream ${counts.min}-${counts.max}, ` +
        `every stream complete ${deliveredInS.toFixed(1)} s after the last logout`)

      // Fan-out: one logout at a time, the service quiet, the time until each stream has its event.
      if (!(await waitForQuiet(service.child.pid))) addNote(withName, `round ${round}: the service was still busy 15 s after the logouts, before the fan-out`)
      const offset = await receivers.clockOffset()
      const fanout: number[] = []
      const allReceived: number[] = []
      let incomplete = 0
      /** Distinct event ids (the jti's first part) in the SETs of each fan-out logout, over every stream. */
      const eventIds: number[] = []
      const eventRows: number[] = []
      for (const session of single) {
        await waitForQuiet(service.child.pid, 0.1, 200, 5_000)
        await receivers.watch(session.sid)
        const response = await fetch(`${service.url}${API}/logout`, {
          method: 'POST', headers: { authorization: `Bearer ${session.access}` }, signal: AbortSignal.timeout(10_000)
        })
        await response.arrayBuffer()
        const ended = now()
        if (response.status !== 204) {
          failures.push(`streams round ${round}: a fan-out logout answered ${response.status}`)
          continue
        }
        const seen = await receivers.arrivals(session.sid, 30_000)
        const delays = seen.arrivals.map((at) => at - offset - ended)
        fanout.push(...delays)
        if (seen.arrivals.length < seen.streams) incomplete++
        else allReceived.push(Math.max(...delays))
        eventIds.push(seen.eventIds.length)
        if (db) eventRows.push(await db.countSecurityEvents(session.sid))
      }
      const spread = distribution(fanout)
      check(`streams round ${round}: every stream received each fan-out logout`, incomplete === 0 && fanout.length === single.length * n,
        `${fanout.length}/${single.length * n} deliveries within 30 s`)
      check(`streams round ${round}: one security_events row per logout, whatever the number of streams`,
        eventIds.every((ids) => ids === 1) && (!db || eventRows.every((rows) => rows === 1)),
        `distinct event ids in the jti of each fan-out logout's SETs to ${fmt(n)} streams: ${eventIds.join(', ')}` +
          (db ? `; security_events rows per fan-out logout: ${eventRows.join(', ')}` : ' (PGlite: the bench cannot query the database)'))

      const stats = await receivers.stats()
      const stopped = await receivers.stop()
      const rowsAfter = db ? await db.countStreams(streamClients.map((c) => c.id)) : await streamsViaApi(service.url, streamClients)
      check(`streams round ${round}: the streams were deleted`, stopped.deleted === n && rowsAfter === 0,
        `${stopped.deleted}/${n} deleted (204); ${rowsAfter} left${db ? ' in ssf_streams' : ' (GET /ssf/streams)'}; receivers: ${fmt(stats.polls)} polls answered, ` +
        `${stats.failures} failed${stats.lastFailure ? ` (last: ${stats.lastFailure})` : ''}`)
      if (stats.failures > 0) failures.push(`streams round ${round}: ${stats.failures} polls failed (last: ${stats.lastFailure})`)
      await waitForQuiet(service.child.pid)
      const rssAfter = readVmRss(service.pid)

      const entry: StreamsRound = {
        round,
        streams: n,
        createSeconds: created.ms / 1000,
        rss: { before: rssBefore, withStreams: rssWith, peak: rssPeak, after: rssAfter },
        streamRows,
        eventRows: db ? eventRows : null,
        distinctEventIds: eventIds,
        fanout: spread,
        allReceived: distribution(allReceived),
        fanoutLogouts: single.length,
        receiversCpu,
        logoutRatio: sameRoundRatio((results.get(withName) ?? []).filter((r) => r.round === round),
          new Map((results.get(withoutName) ?? []).map((r) => [r.round, r.result.reqPerSec])))
      }
      streamRounds.push(entry)
      log(`    ${streamsLine(entry)}`)
    }

    for (let round = 1; round <= options.rounds; round++) {
      log(`round ${round}/${options.rounds}${options.rounds > 1 ? (round % 2 === 1 ? ' (baselines first)' : ' (targets first)') : ''}:`)
      if (round % 2 === 1) {
        await runBaselines(round)
        await runTargets(round)
      } else {
        await runTargets(round)
        await runBaselines(round)
      }
      for (const name of INTROSPECTIONS) {
        if (results.get(name)?.some((r) => r.round === round)) log(`  round ${round}: ${shapeLine(name, shapeRound(shapeRuns(name), round), INTROSPECT_TARGET)}`)
      }
    }

    // --- summary ----------------------------------------------------------------------------------
    const summaries: Summary[] = []
    const baselineSummaries = new Map<string, Summary>()
    for (const name of ['hello', 'hello-204', 'hello-form-json', 'jwt', 'jwt-pg-delete', 'downstream-bare']) {
      const rounds = results.get(name)
      if (!rounds) continue
      const summary = summarise(name, 'baseline', rounds, notes.get(name) ?? [])
      baselineSummaries.set(name, summary)
    }
    if (logoutCounts.length > 0) {
      addNote('logout', `one distinct session per request: ${logoutCounts.join('; ')}`)
    }
    const argon2: Meta['argon2'] = argon2Rates.size > 0
      ? { hashesPerSec: median([...argon2Rates.values()]), inFlight: 2, seconds: options.argon2Seconds }
      : null
    const tokenCache = Number(process.env.TOKEN_CACHE_SIZE ?? 10_000)
    for (const name of ['verify', 'introspect', 'introspect-bearer', 'me']) {
      addNote(name, `${fmt(workload.hot.length)} distinct tokens round-robin` + (tokenCache >= workload.hot.length
        ? `, all in the verified-token cache (TOKEN_CACHE_SIZE=${fmt(tokenCache)}): one signature check per token, the jwt baseline checks every request`
        : ''))
    }
    for (const target of options.scenarios) {
      const rounds = results.get(target)
      if (!rounds) continue
      const summary = summarise(target, 'target', rounds, notes.get(target) ?? [])
      for (const name of ['hello', 'jwt', 'jwt-pg-delete']) {
        const base = results.get(name)
        summary.ratios[name] = base ? sameRoundRatio(rounds, new Map(base.map((r) => [r.round, r.result.reqPerSec]))) : null
      }
      if ((INTROSPECTIONS as readonly string[]).includes(target)) {
        // Same tokens, same caches as verify (bench/README.md, "Scenarios"); next to it, what the
        // HTTP shape alone costs bare Fastify in the same rounds.
        const shape = shapeSummary(shapeRuns(target))
        summary.ratios.verify = shape.versusVerify
        summary.ratios.ceiling = shape.ceiling
        summary.ratios.ceilingShare = shape.share
        const how = target === 'introspect'
          ? 'the client by Basic (id and secret)'
          : 'the client by a Bearer machine token from POST /token (cached after its first request; a longer header than the ceiling\'s Basic one)'
        summary.notes.unshift(`${shapeNote(target, shape, INTROSPECT_TARGET)}; ${how}, form body token=<access token>, 200 with active true expected`)
      }
      if (target === 'downstream') {
        const bare = results.get('downstream-bare')
        const ratio = bare ? sameRoundRatio(rounds, new Map(bare.map((r) => [r.round, r.result.reqPerSec]))) : null
        summary.ratios.bare = ratio
        const perRound = rounds.length > 1 && bare
          ? ` (rounds ${rounds.map((r) => sameRoundRatio([r], new Map(bare.map((b) => [b.round, b.result.reqPerSec])))?.toFixed(2) ?? 'n/a').join(', ')})`
          : ''
        summary.ratios.barePerCpu = bare ? perCpuRatio(rounds, bare) : null
        summary.notes.unshift(`${ratio === null ? 'n/a' : `${ratio.toFixed(2)}×`} downstream-bare in the same round${perRound}: ` +
          `target ≥ ${DOWNSTREAM_TARGET}× ${ratio === null ? 'n/a' : ratio >= DOWNSTREAM_TARGET ? 'met' : 'not met'}; ` +
          `per CPU-second of the downstream process ${fmtRatioText(summary.ratios.barePerCpu)} (less sensitive to other work on the machine); ` +
          `GET /protected behind the verifier's requireAuth (jose + the revocation map of its SSF poll stream) against GET /bare (jose jwtVerify, ` +
          `the same checks, a local JWKS) in one downstream process; ${fmt(workload.hot.length)} hot access tokens round-robin; ` +
          'on 2 shared cores indicative only')
      }
      if (target === 'login' && argon2) {
        const ratio = sameRoundRatio(rounds, argon2Rates)
        summary.ratios.argon2 = ratio
        summary.notes.unshift(`${ratio === null ? 'n/a' : ratio.toFixed(2)}× the argon2id ceiling measured right before it ` +
          `(median ${fmt(argon2.hashesPerSec)} hashes/s, ${hashInFlight} in flight: the service's hashing concurrency)`)
      }
      summaries.push(summary)
    }
    for (const name of [...results.keys()].filter((key) => key.startsWith('logout @ '))) {
      const summary = summarise(name, 'target', results.get(name)!, notes.get(name) ?? [])
      summary.notes.unshift(name === 'logout @ 0 streams'
        ? `streams scenario: ${fmt(options.streamsLogouts)} logouts per round, ${db ? options.connections : 1} at a time` +
          `${downstream ? ', the downstream verifier\'s stream the only one' : ''}, before the streams exist`
        : `streams scenario: ${fmt(options.streamsLogouts)} logouts per round, ${db ? options.connections : 1} at a time, with ${fmt(options.streams)} long polls waiting; ` +
          `${streamRounds.map((r) => fmtRatioText(r.logoutRatio)).join(', ')} of "logout @ 0 streams" (rounds)`)
      summaries.push(summary)
    }
    if (!options.databaseUrl && options.baselines) {
      const na = summarise('jwt-pg-delete', 'baseline', [], ['n/a on PGlite: the embedded database lives inside the service process'])
      baselineSummaries.set('jwt-pg-delete', na)
    }
    summaries.push(...baselineSummaries.values())

    for (const s of summaries) {
      const total = s.errors + s.unexpected + s.status5xx
      if (total > 0) {
        failures.push(`${s.name}: ${s.errors} errors (${s.timeouts} timeouts), ${s.status5xx} 5xx, ${s.unexpected} unexpected statuses ` +
          `(${Object.entries(s.status).map(([c, n]) => `${c}×${n}`).join(' ')})`)
      }
    }
    const counters = workload.counters
    if (counters.unknown > 0) failures.push(`${counters.unknown} sessions ended up in an unknown state (see unexpected statuses)`)
    if (counters.starvedLogout > 0) metaNotes.push(`${counters.starvedLogout} mixed-workload logouts found no spare session and were sent as verifies`)
    if (counters.starvedRefresh > 0) metaNotes.push(`${counters.starvedRefresh} refreshes found no idle session and were sent as verifies`)
    if (counters.settledRefresh + counters.settledLogout > 0) {
      metaNotes.push(`requests cut off at the end of timed runs were settled afterwards: ${counters.settledRefresh} refreshes retried ` +
        `inside the reuse grace window, ${counters.settledLogout} logouts confirmed`)
    }

    const meta: Meta = {
      startedAt,
      commit: gitCommit(ROOT),
      node: process.version,
      cpu: cpuDescription(),
      load: { before: loadBefore, after: loadAverage() },
      engine,
      database: options.databaseUrl ? `PostgreSQL (${redactUrl(options.databaseUrl)})` : 'embedded PGlite in a fresh temp DATA_DIR',
      algorithm: options.algorithm,
      rateLimit: options.rateLimit,
      entry: service.entry,
      workers,
      duration: options.duration,
      warmup: options.warmup,
      connections: options.connections,
      rounds: options.rounds,
      smoke: options.smoke,
      setup: { users: users.length, sessions: sessions.length, hotSessions: hotCount, seconds: setupSeconds },
      argon2,
      notes: metaNotes
    }

    log('')
    log(resultsTable(summaries, engine === 'postgres'))
    const mixed = summaries.find((s) => s.name === 'mixed')
    if (mixed) {
      log('')
      log(kindsTable(mixed))
    }
    for (const note of metaNotes) log(`note: ${note}`)
    const sections: string[] = []
    const pooledPropagation = distribution(propagationRounds.flatMap((r) => r.delays))
    if (propagationRounds.length > 0) sections.push(propagationSection(propagationRounds, pooledPropagation, options.propagationInterval, PROBE_DELAY_MS))
    if (streamRounds.length > 0) sections.push(streamsSection(streamRounds, engine))
    if (scale) sections.push(...scale.sections())
    if (balancer) sections.push(balancer.section())
    for (const section of sections) {
      log('')
      log(section)
    }
    log('')

    const markdown = markdownReport(meta, summaries, checks, failures, sections)
    const label = `${engine}-${options.algorithm.toLowerCase()}${workers > 0 ? `-w${workers}` : ''}${options.smoke ? '-smoke' : ''}`
    const written = writeResults(options.resultsDir, label, {
      meta, summaries, checks, failures,
      propagation: propagationRounds.length > 0 ? { rounds: propagationRounds, all: pooledPropagation, intervalMs: options.propagationInterval, probeDelayMs: PROBE_DELAY_MS } : null,
      streams: streamRounds.length > 0 ? streamRounds : null
    }, markdown, !options.smoke)
    log(`results: ${written.map((f) => path.relative(ROOT, f)).join(', ')}`)
  } catch (err) {
    failures.push(`bench aborted: ${(err as Error).stack ?? String(err)}`)
  } finally {
    // Before the service stops: the downstream's verifier and the receivers delete their streams.
    if (receivers?.child.running()) await receivers.stop().catch(() => undefined)
    await receivers?.child.stop(10_000)
    await downstream?.child.stop(10_000)
    await scale?.stop()
    await balancer?.stop().catch((err) => log(`warning: stopping the balancer scenario: ${(err as Error).message}`))
    if (db) {
      try {
        if (!options.keepData) {
          const ids = [...users.map((u) => u.id).filter((id): id is string => Boolean(id)), ...(baselineUserId ? [baselineUserId] : [])]
          if (ids.length > 0) {
            const removed = await db.deleteUsers(ids)
            log(`removed the bench's ${removed.users} users (with their sessions), ${removed.events} audit events and ` +
              `${removed.securityEvents} security events from the database`)
          }
          const streams = benchClientIds.length > 0 ? await db.deleteStreamsOf(benchClientIds) : 0
          if (streams > 0) log(`removed ${streams} streams the bench's clients left behind`)
        }
      } catch (err) {
        log(`warning: could not remove the bench's rows: ${(err as Error).message}`)
      }
      await db.close().catch(() => {})
    }
    await stopAllChildren()
  }

  if (!reportFailures(failures)) return 1
  log('no errors, no 5xx, no unexpected status')
  return 0
}

/**
 * VACUUM before every timed run, as autovacuum would between bursts: a scenario that deletes
 * (logout, the verify+DELETE baseline, the fixtures' clean-up) leaves tens of thousands of dead
 * rows, and on a server with autovacuum off they slow down whatever runs next. Measured
 * 2026-12-01 without it: logout right after the baseline ran at 0.70x of it, and before it 1.10x.
 */
async function vacuumQuietly(db: BenchDatabase): Promise<void> {
  try {
    await db.vacuum()
  } catch (err) {
    log(`  note: VACUUM failed (${(err as Error).message}); dead rows from earlier runs may slow this one`)
  }
}

/** The median over rounds of requests per server CPU-second, the scenario's over the reference's in the same round. */
function perCpuRatio(rounds: readonly RoundResult[], reference: readonly RoundResult[]): number | null {
  const efficiency = (r: RoundResult) => r.result.reqPerSec / r.result.serverCpu
  const ratios = rounds.flatMap((r) => {
    const base = reference.find((b) => b.round === r.round)
    const value = base ? efficiency(r) / efficiency(base) : Number.NaN
    return Number.isFinite(value) ? [value] : []
  })
  return ratios.length > 0 ? median(ratios) : null
}

/** The median over rounds of the scenario's req/s over the reference's in the same round. */
function sameRoundRatio(rounds: readonly RoundResult[], reference: ReadonlyMap<number, number>): number | null {
  const ratios = rounds.flatMap((r) => {
    const base = reference.get(r.round)
    return base ? [r.result.reqPerSec / base] : []
  })
  return ratios.length > 0 ? median(ratios) : null
}

function describeOthers(others: Record<string, number>): string {
  const entries = Object.entries(others)
  return entries.length === 0 ? '' : ` (others: ${entries.map(([code, n]) => `${code}×${n}`).join(' ')})`
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'DATABASE_URL'
  }
}

process.exitCode = await main()
