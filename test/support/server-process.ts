// Runs the real server (`src/server.ts`) as a child process on 127.0.0.1, for tests that need
// separate instances or real signals. Every wait is bounded; stop() always ends the process.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pgliteDirFor } from '../../src/db/database.js'
import { copyPgliteTemplate } from './pglite-template.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const EXIT_WITH_PARENT = path.join(ROOT, 'test/support/exit-with-parent.ts')

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface ServerProcess {
  readonly url: string
  readonly pid: number
  readonly child: ChildProcess
  /** Everything the process wrote, for assertions and for diagnosing a failure. */
  output(): string
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves to the exit code. */
  stop(graceMs?: number): Promise<number | null>
}

export interface StartOptions {
  /** The entry point: src/server.ts (one process) or src/cluster.ts (workers). */
  entry?: 'src/server.ts' | 'src/cluster.ts'
  readyTimeoutMs?: number
  /** Listen on this port instead of a free one (an instance restarted where the balancer expects it). */
  port?: number
}

export async function startServer(env: Record<string, string>, options: StartOptions = {}): Promise<ServerProcess> {
  // A start takes under 2 s on an idle machine, 10 s with both cores busy, and was seen past 30 s
  // on a slow CI machine running two suites side by side: the bound is for a start that hangs.
  const { entry = 'src/server.ts', readyTimeoutMs = 90_000 } = options
  const port = options.port ?? await freePort()
  const dataDir = mkdtempSync(path.join(tmpdir(), 'auth-server-'))
  // On PGlite the server opens DATA_DIR/pglite: start it from the migrated template, not initdb.
  if (!env.DATABASE_URL && entry === 'src/server.ts') await copyPgliteTemplate(pgliteDirFor(dataDir))
  // A clean environment: no test-runner loaders or coverage hooks leak into the child.
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', EXIT_WITH_PARENT, entry], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      RATE_LIMIT: 'off',
      PASSWORD_HASH_CONCURRENCY: '4', // as in test/helper.ts
      PASSWORD_HASH_POLICY: 'normal',
      PASSWORD_HASH_NICE: '0',
      PASSWORD_HASH_QUEUE: '1000',
      SESSION_CLEANUP_INTERVAL: '0',
      // No idle-time collection pausing an instance between a test's phases (test/lifecycle/idle-memory.test.ts turns it on).
      MEMORY_RELEASE_IDLE: '0',
      // Instances of one deployment share an issuer (behind a balancer, PUBLIC_URL is the same);
      // the default, http://HOST:PORT, would differ per port and each would refuse the others' tokens.
      JWT_ISSUER: 'https://auth.test.example',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  exited.then(() => rmSync(dataDir, { recursive: true, force: true }), () => {})

  const url = `http://127.0.0.1:${port}`
  const server: ServerProcess = {
    url,
    pid: child.pid!,
    child,
    output: () => output,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }

  const deadline = Date.now() + readyTimeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output}`)
    try {
      if ((await fetch(`${url}/health/ready`)).ok) return server
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  await server.stop()
  throw new Error(`server not ready after ${readyTimeoutMs} ms:\n${output}`)
}
