// Starts what the benchmark measures, each as its own child process on 127.0.0.1: the service
// (src/server.ts, or src/cluster.ts with WORKERS=n) and the baselines in bench/baselines/.
import { createPublicKey, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import type { ServiceClientEntry } from '../../src/auth/service-clients.js'
import { freePort, ROOT, runToCompletion, startChild, waitUntilReady, type Child } from './children.js'

export type Algorithm = 'EdDSA' | 'ES256' | 'HS256'
export const ALGORITHMS: readonly Algorithm[] = ['EdDSA', 'ES256', 'HS256']
/** The service's default (src/config.ts). */
export const DEFAULT_ALGORITHM: Algorithm = 'EdDSA'

/** Service settings a user may tune for a run; passed through to the service when set. */
const PASS_THROUGH = [
  'PG_POOL_SIZE', 'SESSION_CACHE_SIZE', 'SESSION_CACHE_TTL', 'ACCESS_TOKEN_TTL', 'REFRESH_TOKEN_TTL',
  'REFRESH_REUSE_GRACE', 'CLOCK_TOLERANCE', 'JWT_ISSUER', 'JWT_AUDIENCE', 'JWT_CLIENT_ID', 'BODY_LIMIT',
  'AUDIT_RETENTION', 'TOKEN_CACHE_SIZE', 'REFRESH_CHAIN_SECRET', 'UV_THREADPOOL_SIZE', 'TZ', 'MEMORY_RELEASE_IDLE'
]

/**
 * The node flags `npm start` runs the service with (package.json), given to the service and to
 * the baselines alike, so the comparison is of code, not of runtime settings.
 */
export const RUNTIME_FLAGS = ['--max-semi-space-size=64']

export interface SigningKey {
  readonly algorithm: Algorithm
  /** Environment for the service: JWT_PRIVATE_KEY, or JWT_SECRET for HS256. */
  readonly serviceEnv: Record<string, string>
  /** What verifies its tokens: a PEM public key, or the HS256 secret. */
  readonly verifyKey: string
  /** What signs tokens like the service's: a PEM private key, or the HS256 secret. */
  readonly signKey: string
}

export function generateKey(algorithm: Algorithm): SigningKey {
  if (algorithm === 'HS256') {
    const secret = randomBytes(48).toString('base64url')
    return { algorithm, serviceEnv: { JWT_SECRET: secret }, verifyKey: secret, signKey: secret }
  }
  const pem = generateSigningKeyPem(algorithm)
  const publicPem = createPublicKey(pem).export({ format: 'pem', type: 'spki' }).toString()
  return { algorithm, serviceEnv: { JWT_PRIVATE_KEY: pem }, verifyKey: publicPem, signKey: pem }
}

export interface Service {
  readonly url: string
  /** The internal listener (GET /metrics; NODE_ENV=production serves it there only). */
  readonly internalUrl: string
  readonly child: Child
  /** The process whose memory the soak samples (the cluster primary in multi-core mode). */
  readonly pid: number
  readonly engine: 'postgres' | 'pglite'
  readonly entry: string
  /** Date.now() when the process was spawned (profiles count from about then). */
  readonly spawnedAt: number
  stop(): Promise<void>
}

export interface ServiceOptions {
  readonly key: SigningKey
  readonly databaseUrl?: string
  /** >0: run src/cluster.ts with WORKERS=n (PostgreSQL only). */
  readonly workers?: number
  /** Extra node flags, e.g. --cpu-prof (BENCH_NODE_ARGS / SOAK_NODE_ARGS). */
  readonly nodeArgs?: readonly string[]
  /** Extra environment for the service (after the defaults). */
  readonly env?: Record<string, string>
  /**
   * Machine clients: written to `service-clients.json` in the service's DATA_DIR and passed as
   * SERVICE_CLIENTS_FILE (the entries `npm run client -- create` prints).
   */
  readonly serviceClients?: readonly ServiceClientEntry[]
  /**
   * The service's own PASSWORD_HASH_QUEUE default instead of the bench's 1000 (the flood
   * scenario measures the bound itself).
   */
  readonly defaultHashQueue?: boolean
  /** Another checkout to run the service from (a git worktree of an earlier commit: before/after runs). */
  readonly root?: string
}

export const CLUSTER_ENTRY = 'src/cluster.ts'

export function clusterEntryExists(): boolean {
  return existsSync(path.join(ROOT, CLUSTER_ENTRY))
}

/** `npm run migrate` against DATABASE_URL (bounded). */
export async function migrate(databaseUrl: string): Promise<string> {
  const output = await runToCompletion('migrate', ['--import', 'tsx', 'scripts/migrate.ts'], {
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn'
  }, 120_000)
  return output.trim()
}

export async function startService(options: ServiceOptions): Promise<Service> {
  const port = await freePort()
  const internalPort = await freePort()
  const dataDir = mkdtempSync(path.join(tmpdir(), 'auth-bench-'))
  const passThrough: Record<string, string> = {}
  for (const name of PASS_THROUGH) {
    const value = process.env[name]
    if (value !== undefined && value !== '') passThrough[name] = value
  }
  const workers = options.workers ?? 0
  const entry = workers > 0 ? CLUSTER_ENTRY : 'src/server.ts'
  const clientsFile: Record<string, string> = {}
  if (options.serviceClients) {
    const file = path.join(dataDir, 'service-clients.json')
    writeFileSync(file, `${JSON.stringify({ clients: options.serviceClients }, null, 2)}\n`, { mode: 0o600 })
    clientsFile.SERVICE_CLIENTS_FILE = file
  }
  const env: Record<string, string> = {
    ...passThrough,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    // The issuer (unless JWT_ISSUER is passed through) and the metadata's base: what clients use.
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    INTERNAL_PORT: String(internalPort),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    RATE_LIMIT: 'off',
    // No idle-time collection (src/idle-memory.ts) pausing the instance as a measured run starts
    // after a quiet setup; MEMORY_RELEASE_IDLE is passed through to measure with it.
    MEMORY_RELEASE_IDLE: passThrough.MEMORY_RELEASE_IDLE ?? '0',
    // The login scenario measures how fast logins are, with more connections than the default
    // queue holds on a small machine; the bound itself (503 past it) is not what it measures.
    ...(options.defaultHashQueue ? {} : { PASSWORD_HASH_QUEUE: '1000' }),
    JWT_ALGORITHM: options.key.algorithm,
    ...options.key.serviceEnv,
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...(workers > 0 ? { WORKERS: String(workers) } : {}),
    ...clientsFile,
    ...options.env
  }
  const spawnedAt = Date.now()
  const child = startChild('service', [...RUNTIME_FLAGS, ...(options.nodeArgs ?? []), '--import', 'tsx', entry], env, options.root)
  void child.exited.then(() => rmSync(dataDir, { recursive: true, force: true }))
  const url = `http://127.0.0.1:${port}`
  await waitUntilReady(child, `${url}/health/ready`, 90_000)
  return {
    url,
    internalUrl: `http://127.0.0.1:${internalPort}`,
    child,
    pid: child.pid,
    engine: options.databaseUrl ? 'postgres' : 'pglite',
    entry,
    spawnedAt,
    stop: async () => {
      await child.stop(15_000)
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

export type BaselineName = 'hello' | 'hello-204' | 'hello-form-json' | 'jwt' | 'jwt-pg-delete'

export interface Baseline {
  readonly name: BaselineName
  readonly url: string
  readonly child: Child
}

/** Starts bench/baselines/<name>.ts on 127.0.0.1 with the same key and algorithm. */
export async function startBaseline(name: BaselineName, key: SigningKey, databaseUrl?: string, workers = 0): Promise<Baseline> {
  const port = await freePort()
  const child = startChild(`baseline ${name}`, [...RUNTIME_FLAGS, '--import', 'tsx', `bench/baselines/${name}.ts`], {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    BASELINE_JWT_ALGORITHM: key.algorithm,
    BASELINE_JWT_KEY: key.verifyKey,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...(process.env.PG_POOL_SIZE ? { PG_POOL_SIZE: process.env.PG_POOL_SIZE } : {}),
    ...(workers > 0 ? { WORKERS: String(workers) } : {})
  })
  const url = `http://127.0.0.1:${port}`
  await waitUntilReady(child, `${url}/ready`, 60_000)
  return { name, url, child }
}
