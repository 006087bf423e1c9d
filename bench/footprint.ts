// The service's memory footprint at rest: starts it exactly as `npm start` does (and as the Docker
// image does: compiled dist/, NODE_ENV=production), on a fresh DATA_DIR, on the same DATA_DIR
// again, and on PostgreSQL (DATABASE_URL), samples it 1 s after /health/ready answers and again
// FOOTPRINT_REST seconds after (past MEMORY_RELEASE_IDLE: src/idle-memory.ts), then makes a few
// requests (register, login, verify) and rests again. For each it reports the
// server process's own VmRSS and VmHWM (/proc/<pid>/status: node itself, never npm), the V8 heap
// and external memory from its /metrics (prom-client's nodejs_* gauges), and the start time
// (spawn to the first 200 from /health/ready). Every wait is bounded, every process stopped by pid.
//
//   npm run footprint                                  # npm start and the Docker command, PGlite only
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/auth_footprint npm run footprint
//   FOOTPRINT_SET=breakdown npm run footprint          # the candidates one by one (bench/README.md)
//   FOOTPRINT_BASE=HEAD~3 npm run footprint            # the same, also on an older commit, side by side
//   npm run footprint -- --modules                     # what each dependency costs when imported
//
// Options (environment): FOOTPRINT_SET (default | breakdown), FOOTPRINT_REST (seconds, 15),
// FOOTPRINT_ROUNDS (1; medians of alternating rounds), FOOTPRINT_BASE (a git ref, run from a copy
// of its tree under the OS temp directory with this checkout's node_modules; or a directory holding
// such a tree), FOOTPRINT_JSON (a
// file for the raw samples), FOOTPRINT_ONLY (comma-separated variant labels), FOOTPRINT_ENGINES
// (fresh,reused,postgres; postgres only with DATABASE_URL), FOOTPRINT_VARIANTS (more variants:
// `label|tsx or dist|node flags|KEY=value ...`, ';'-separated).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { generateSigningKeyPem } from '../src/auth/keys.js'
import { freePort, installCleanupHandlers, ROOT, sleep, startChild, stopAllChildren, waitUntilReady, type Child } from './lib/children.js'

const MiB = 1024 * 1024

/** How the service is started: which tree, which entry, which node flags, which extra environment. */
interface Variant {
  readonly label: string
  /** `tsx`: node --import tsx src/server.ts (npm start); `dist`: node dist/src/server.js (Docker). */
  readonly entry: 'tsx' | 'dist'
  readonly nodeArgs: readonly string[]
  readonly env?: Readonly<Record<string, string>>
  /** NODE_ENV=production with a generated key, as the Docker image runs. */
  readonly production?: boolean
  /** The tree to run: this checkout, or a copy of FOOTPRINT_BASE. */
  readonly root?: string
  /** Run before each start: npm start's prestart (the transpile to dist/), or the Docker build's tsc. */
  readonly prepare?: () => void
}

type Engine = 'fresh' | 'reused' | 'postgres'

interface Sample {
  readonly rss: number
  readonly hwm: number
  readonly heapUsed: number
  readonly heapTotal: number
  readonly external: number
}

interface Result {
  readonly variant: string
  readonly engine: Engine
  readonly startMs: number
  /** One second after the first 200 from /health/ready: before MEMORY_RELEASE_IDLE has passed. */
  readonly started: Sample
  readonly atRest: Sample
  readonly afterRequests: Sample
}

/** The node flags in package.json's "start" (and bench/lib/service.ts's RUNTIME_FLAGS, the Dockerfile's CMD). */
function startFlags(root: string): string[] {
  const words = startScript(root).start.split(/\s+/)
  return words.slice(1).filter((word, i, all) => word.startsWith('--') && word !== '--import' && all[i - 1] !== '--import')
}

function startScript(root: string): Record<string, string> {
  return (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts
}

/** `npm start` as the tree's package.json has it: the TypeScript through tsx, or dist/ after its prestart. */
function npmStart(label: string, root: string): Variant {
  const scripts = startScript(root)
  if (scripts.start.includes('src/server.ts')) return { label, entry: 'tsx', nodeArgs: startFlags(root), root }
  const prestart = scripts.prestart
  return {
    label,
    entry: 'dist',
    nodeArgs: startFlags(root),
    root,
    prepare: prestart ? () => execFileSync('sh', ['-c', `PATH=node_modules/.bin:$PATH ${prestart}`], { cwd: root, stdio: 'inherit', timeout: 120_000 }) : undefined
  }
}

/** The Docker build's step: tsc to dist/ (npm run build), before each start of the Docker variant. */
function tscBuild(root: string): () => void {
  return () => execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit', timeout: 300_000 })
}

function variants(set: string, base: string | undefined): Variant[] {
  const flags = startFlags(ROOT)
  const docker: Variant = { label: 'docker (dist, production)', entry: 'dist', nodeArgs: flags, production: true, prepare: tscBuild(ROOT) }
  const list: Variant[] = []
  if (base) {
    list.push(npmStart('base: npm start', base))
    if (set !== 'breakdown') list.push({ label: 'base: docker', entry: 'dist', nodeArgs: startFlags(base), production: true, root: base, prepare: tscBuild(base) })
  }
  list.push(npmStart('npm start', ROOT), docker)
  if (set === 'breakdown') {
    const withoutSemi = flags.filter((flag) => !flag.startsWith('--max-semi-space-size'))
    list.push(
      { label: 'tsx, no node flags', entry: 'tsx', nodeArgs: withoutSemi },
      { label: 'tsx, --max-semi-space-size=64', entry: 'tsx', nodeArgs: [...withoutSemi, '--max-semi-space-size=64'] },
      { label: 'dist, no node flags', entry: 'dist', nodeArgs: withoutSemi, prepare: tscBuild(ROOT) },
      { label: 'dist, development', entry: 'dist', nodeArgs: flags, prepare: tscBuild(ROOT) },
      { label: 'tsx, DOCS=off METRICS=off', entry: 'tsx', nodeArgs: flags, env: { DOCS: 'off', METRICS: 'off' } },
      { label: 'dist, MEMORY_RELEASE_IDLE=0', entry: 'dist', nodeArgs: flags, env: { MEMORY_RELEASE_IDLE: '0' }, prepare: tscBuild(ROOT) }
    )
  }
  // FOOTPRINT_VARIANTS: more of them, ';'-separated, each `label|tsx or dist|node flags|KEY=value ...`.
  for (const spec of (process.env.FOOTPRINT_VARIANTS ?? '').split(';').filter((text) => text.trim())) {
    const [label = spec, entry = 'tsx', nodeFlags = '', envText = ''] = spec.split('|').map((part) => part.trim())
    if (entry !== 'tsx' && entry !== 'dist') throw new Error(`FOOTPRINT_VARIANTS: the entry is tsx or dist (got "${entry}")`)
    const env = Object.fromEntries(envText.split(/\s+/).filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]))
    list.push({ label, entry, nodeArgs: nodeFlags.split(/\s+/).filter(Boolean), env, production: env.NODE_ENV === 'production', prepare: entry === 'dist' ? tscBuild(ROOT) : undefined })
  }
  const only = process.env.FOOTPRINT_ONLY?.split(',').map((label) => label.trim()).filter(Boolean)
  return only ? list.filter((variant) => only.includes(variant.label)) : list
}

function readStatus(pid: number): { rss: number, hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
}

async function sample(pid: number, metricsUrl: string): Promise<Sample> {
  let text = ''
  try {
    const response = await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) })
    text = await response.text()
  } catch {
    // no metrics: the heap figures stay NaN
  }
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN)
  // After the scrape: the scrape itself allocates, and what is reported is the process at rest.
  return {
    ...readStatus(pid),
    heapUsed: gauge('nodejs_heap_size_used_bytes'),
    heapTotal: gauge('nodejs_heap_size_total_bytes'),
    external: gauge('nodejs_external_memory_bytes')
  }
}

async function request(url: string, init: RequestInit & { expect: number }): Promise<unknown> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) })
  const text = await response.text()
  if (response.status !== init.expect) throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} (expected ${init.expect}): ${text.slice(0, 300)}`)
  return text ? JSON.parse(text) : undefined
}

/** A few requests of each kind a user makes: register, login, verify. */
async function exercise(api: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const email = `footprint-${process.pid}-${Date.now()}-${i}@example.com`
    const body = JSON.stringify({ email, password: 'correct horse battery staple' })
    const headers = { 'content-type': 'application/json' }
    await request(`${api}/register`, { method: 'POST', headers, body, expect: 201 })
    const pair = await request(`${api}/login`, { method: 'POST', headers, body, expect: 200 }) as { access_token: string }
    for (let j = 0; j < 10; j++) await request(`${api}/verify`, { headers: { authorization: `Bearer ${pair.access_token}` }, expect: 204 })
  }
}

async function runOnce(variant: Variant, engine: Engine, dataDir: string, key: string, rest: number): Promise<Result> {
  const root = variant.root ?? ROOT
  const port = await freePort()
  const internalPort = await freePort()
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: String(port),
    INTERNAL_HOST: '127.0.0.1',
    INTERNAL_PORT: String(internalPort),
    DATA_DIR: dataDir,
    ...(variant.production ? { NODE_ENV: 'production', JWT_PRIVATE_KEY: key, PUBLIC_URL: `http://127.0.0.1:${port}` } : {}),
    ...(engine === 'postgres' ? { DATABASE_URL: process.env.DATABASE_URL! } : {}),
    ...variant.env
  }
  const entry = variant.entry === 'tsx' ? ['--import', 'tsx', 'src/server.ts'] : ['dist/src/server.js']
  const spawnedAt = performance.now()
  const child = startChildIn(root, `${variant.label} (${engine})`, [...variant.nodeArgs, ...entry], env)
  try {
    const url = `http://127.0.0.1:${port}`
    await waitUntilReady(child, `${url}/health/ready`, 120_000)
    const startMs = performance.now() - spawnedAt
    const metricsUrl = variant.production || env.METRICS === 'internal' ? `http://127.0.0.1:${internalPort}/metrics` : `${url}/metrics`
    await sleep(1000)
    const started = await sample(child.pid, metricsUrl)
    await sleep(Math.max(0, rest - 1) * 1000)
    const atRest = await sample(child.pid, metricsUrl)
    await exercise(`${url}/api/v1/auth`)
    await sleep(rest * 1000)
    const afterRequests = await sample(child.pid, metricsUrl)
    return { variant: variant.label, engine, startMs, started, atRest, afterRequests }
  } finally {
    const code = await child.stop(15_000)
    if (code !== 0) process.stderr.write(`[${child.name}] exited with ${code}\n`)
  }
}

/** startChild runs in the repository root; a base tree runs from its own copy (cwd matters for tsx and dist/). */
function startChildIn(root: string, name: string, args: string[], env: Record<string, string>): Child {
  if (root === ROOT) return startChild(name, args, env)
  return startChild(name, ['--import', `data:text/javascript,process.chdir(${JSON.stringify(root)})`, ...args.map((arg) => (arg.startsWith('src/') || arg.startsWith('dist/') ? path.join(root, arg) : arg))], env)
}

/** A copy of `ref`'s tree (git archive) with this checkout's node_modules. */
function checkout(ref: string): string {
  // A directory holding a tree already (a copy made elsewhere) is used as it is.
  if (existsSync(path.join(ref, 'package.json'))) return path.resolve(ref)
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim()
  const dir = path.join(tmpdir(), `auth-footprint-${commit}`)
  if (!existsSync(path.join(dir, 'package.json'))) {
    mkdirSync(dir, { recursive: true })
    execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C ${JSON.stringify(dir)}`], { cwd: ROOT, stdio: 'inherit' })
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  }
  return dir
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function medianSample(samples: Sample[]): Sample {
  const of = (key: keyof Sample) => median(samples.map((s) => s[key]))
  return { rss: of('rss'), hwm: of('hwm'), heapUsed: of('heapUsed'), heapTotal: of('heapTotal'), external: of('external') }
}

const mib = (bytes: number) => (Number.isFinite(bytes) ? (bytes / MiB).toFixed(0) : '-')

function report(results: Result[]): string {
  const rows = [
    '| variant | engine | start s | RSS 1 s after ready MB | RSS at rest MB | heap used / total MB | external MB | peak RSS (VmHWM) MB | RSS after requests MB | heap after MB |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|'
  ]
  for (const r of results) {
    rows.push(`| ${r.variant} | ${r.engine} | ${(r.startMs / 1000).toFixed(1)} | ${mib(r.started.rss)} | **${mib(r.atRest.rss)}** | ${mib(r.atRest.heapUsed)} / ${mib(r.atRest.heapTotal)} | ${mib(r.atRest.external)} | ${mib(r.afterRequests.hwm)} | ${mib(r.afterRequests.rss)} | ${mib(r.afterRequests.heapUsed)} / ${mib(r.afterRequests.heapTotal)} |`)
  }
  return rows.join('\n')
}

/**
 * --modules: what each dependency adds when imported on its own into a bare node (RSS and heap
 * after a full GC), in the order the service loads them; tsx itself first.
 */
async function moduleCosts(): Promise<void> {
  const steps = [
    'fastify', '@fastify/swagger', '@fastify/swagger-ui', 'fastify-metrics', 'pg', 'kysely', '@electric-sql/pglite',
    '@node-rs/argon2', '@zxcvbn-ts/language-common', 'ioredis', '@fastify/rate-limit', '@fastify/helmet'
  ]
  const script = `
    const { readFileSync } = await import('node:fs')
    const kb = (n) => Number(new RegExp('^' + n + ':\\\\s+(\\\\d+)', 'm').exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
    const at = () => { gc(); gc(); const m = process.memoryUsage(); return { rss: kb('VmRSS'), heap: m.heapUsed, ext: m.external } }
    const out = [['node', at()]]
    for (const name of ${JSON.stringify(steps)}) { await import(name); out.push([name, at()]) }
    process.stdout.write(JSON.stringify(out))
  `
  const rows = ['| import | RSS MB | + RSS MB | heap used MB | + heap MB |', '|---|---:|---:|---:|---:|']
  for (const loader of [[], ['--import', 'tsx']]) {
    const output = execFileSync(process.execPath, ['--expose-gc', ...loader, '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { PATH: process.env.PATH ?? '' } })
    let previous: { rss: number, heap: number } | undefined
    for (const [name, m] of JSON.parse(output) as Array<[string, { rss: number, heap: number }]>) {
      const label = name === 'node' ? (loader.length ? 'node --import tsx' : 'node') : name
      rows.push(`| ${label} | ${mib(m.rss)} | ${previous ? `+${mib(m.rss - previous.rss)}` : ''} | ${mib(m.heap)} | ${previous ? `+${mib(m.heap - previous.heap)}` : ''} |`)
      previous = m
    }
  }
  console.log(rows.join('\n'))
}

async function main(): Promise<void> {
  if (process.argv.includes('--modules')) return moduleCosts()
  installCleanupHandlers()
  const set = process.env.FOOTPRINT_SET ?? 'default'
  // Past MEMORY_RELEASE_IDLE (10 s) and its check: the instance has given its start-up memory back.
  const rest = Number(process.env.FOOTPRINT_REST ?? 15)
  const rounds = Number(process.env.FOOTPRINT_ROUNDS ?? 1)
  const base = process.env.FOOTPRINT_BASE ? checkout(process.env.FOOTPRINT_BASE) : undefined
  const list = variants(set, base)
  const engines = (process.env.FOOTPRINT_ENGINES?.split(',') ?? ['fresh', 'reused', 'postgres'])
    .filter((engine): engine is Engine => engine === 'fresh' || engine === 'reused' || (engine === 'postgres' && Boolean(process.env.DATABASE_URL)))
  if (engines.includes('reused') && !engines.includes('fresh')) engines.unshift('fresh')
  const key = generateSigningKeyPem('EdDSA')
  // The service never migrates PostgreSQL itself (npm run migrate is a deploy step).
  if (process.env.DATABASE_URL) execFileSync(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000, env: { ...process.env, LOG_LEVEL: 'warn' } })
  const all: Result[] = []
  console.log(`# footprint: ${new Date().toISOString()}, node ${process.version}, ${rounds} round(s), ${rest} s at rest; ${engines.join(', ')}`)
  for (let round = 0; round < rounds; round++) {
    // Alternating order from round to round, so that a slower moment of the machine is shared.
    for (const variant of round % 2 ? [...list].reverse() : list) {
      // Outside the start time, as npm runs it before node starts.
      variant.prepare?.()
      const dataDir = mkdtempSync(path.join(tmpdir(), 'auth-footprint-'))
      try {
        for (const engine of engines) {
          const result = await runOnce(variant, engine, dataDir, key, rest)
          all.push(result)
          process.stderr.write(`round ${round + 1}: ${variant.label} (${engine}): ${mib(result.atRest.rss)} MB at rest, ${mib(result.afterRequests.rss)} MB after requests, ready in ${(result.startMs / 1000).toFixed(1)} s\n`)
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true })
      }
    }
  }
  const merged: Result[] = []
  for (const variant of list) {
    for (const engine of engines) {
      const of = all.filter((r) => r.variant === variant.label && r.engine === engine)
      merged.push({ variant: variant.label, engine, startMs: median(of.map((r) => r.startMs)), started: medianSample(of.map((r) => r.started)), atRest: medianSample(of.map((r) => r.atRest)), afterRequests: medianSample(of.map((r) => r.afterRequests)) })
    }
  }
  console.log(report(merged))
  if (process.env.FOOTPRINT_JSON) writeFileSync(process.env.FOOTPRINT_JSON, `${JSON.stringify(all, null, 2)}\n`)
}

try {
  await main()
} finally {
  await stopAllChildren()
}
