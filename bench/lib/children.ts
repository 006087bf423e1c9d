// Child processes of the benchmark: the service and the baselines. Each runs in its own process
// group (detached), so stopping it also stops whatever it forked (cluster workers). Every child
// is stopped at the end, on SIGINT/SIGTERM and, as a last resort, with SIGKILL when this process
// exits. Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

const OUTPUT_LIMIT = Number(process.env.BENCH_CHILD_OUTPUT_LIMIT ?? 64 * 1024)

export interface Child {
  readonly name: string
  readonly pid: number
  readonly process: ChildProcess
  /** The last 64 KiB of what it wrote to stdout and stderr. */
  output(): string
  readonly exited: Promise<number | null>
  running(): boolean
  /** SIGTERM to its process group, SIGKILL after `graceMs`; resolves to the exit code. */
  stop(graceMs?: number): Promise<number | null>
}

const children = new Set<Child>()

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

/** Starts `node <args>` in the repository root (or `cwd`) with exactly `env` (plus PATH and HOME). */
export function startChild(name: string, args: string[], env: Record<string, string>, cwd = ROOT): Child {
  const proc = spawn(process.execPath, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  let output = ''
  const append = (chunk: Buffer) => {
    output += chunk.toString()
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT)
  }
  proc.stdout!.on('data', append)
  proc.stderr!.on('data', append)
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)))
    proc.once('error', () => resolve(-1))
  })

  const child: Child = {
    name,
    pid: proc.pid ?? -1,
    process: proc,
    output: () => output,
    exited,
    running: () => proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined,
    async stop(graceMs = 10_000) {
      if (child.running()) {
        signalGroup(proc, 'SIGTERM')
        const timer = setTimeout(() => signalGroup(proc, 'SIGKILL'), graceMs)
        // Bounded even if the exit event never comes (a zombie, a stuck kernel call).
        let bound: NodeJS.Timeout | undefined
        await Promise.race([exited, new Promise((resolve) => (bound = setTimeout(resolve, graceMs + 5_000)))])
        clearTimeout(timer)
        clearTimeout(bound)
      }
      // Cluster workers may outlive their primary for a moment: make sure the group is gone.
      signalGroup(proc, 'SIGKILL')
      children.delete(child)
      return proc.exitCode
    }
  }
  children.add(child)
  void exited.then(() => {
    if (proc.exitCode !== 0 && proc.exitCode !== null && !stopping) {
      process.stderr.write(`\n[${name}] exited with ${proc.exitCode}\n${output.slice(-4000)}\n`)
    }
  })
  return child
}

function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return
  try {
    process.kill(-proc.pid, signal) // the child's own process group (detached)
  } catch {
    try {
      proc.kill(signal)
    } catch {
      // already gone
    }
  }
}

let stopping = false

export async function stopAllChildren(): Promise<void> {
  stopping = true
  await Promise.all([...children].map((child) => child.stop(5_000)))
}

let handlersInstalled = false

/** Stops every child on SIGINT/SIGTERM (then exits 130/143) and SIGKILLs leftovers on exit. */
export function installCleanupHandlers(onInterrupt?: () => void): void {
  if (handlersInstalled) return
  handlersInstalled = true
  const interrupt = (signal: NodeJS.Signals, code: number) => {
    process.stderr.write(`\n${signal}: stopping ${children.size} child process(es)...\n`)
    onInterrupt?.()
    const forced = setTimeout(() => process.exit(code), 15_000)
    forced.unref()
    void stopAllChildren().finally(() => process.exit(code))
  }
  process.once('SIGINT', () => interrupt('SIGINT', 130))
  process.once('SIGTERM', () => interrupt('SIGTERM', 143))
  process.once('exit', () => {
    for (const child of children) signalGroup(child.process, 'SIGKILL')
  })
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `url` until it answers 2xx; throws (with the child's output) after `timeoutMs`. */
export async function waitUntilReady(child: Child, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!child.running()) throw new Error(`${child.name} exited with ${child.process.exitCode} before it was ready:\n${child.output()}`)
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
      await response.arrayBuffer()
      if (response.ok) return
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  await child.stop(2_000)
  throw new Error(`${child.name} not ready after ${timeoutMs} ms:\n${child.output()}`)
}

/** Runs `node <args>` to completion (bounded); throws with its output when it fails. */
export async function runToCompletion(name: string, args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<string> {
  const child = startChild(name, args, env)
  const timer = setTimeout(() => void child.stop(2_000), timeoutMs)
  const code = await child.exited
  clearTimeout(timer)
  children.delete(child)
  if (code !== 0) throw new Error(`${name} failed (exit ${code}):\n${child.output()}`)
  return child.output()
}
