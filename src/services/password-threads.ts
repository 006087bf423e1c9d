// argon2id on threads of its own, at a lower OS priority than the event loop.
//
// @node-rs/argon2's async calls run on libuv's thread pool at the process's priority: during a
// login flood they take whole cores from the event loop, and /verify (the gateway's check on
// every request) slows with it. Here each computation runs synchronously in one of `size` worker
// threads, each of which lowers its own priority (Linux): by default to SCHED_IDLE (`chrt -i`
// on the thread id: Node has no binding for sched_setscheduler), where the thread runs only on
// CPU nothing else wants and a waking event loop preempts it at once; failing that, or with
// PASSWORD_HASH_POLICY=normal, a nice value (setpriority on the thread id). A busy machine then
// gives its CPU to the event loop first and to hashing what is left; an idle one hashes at full
// speed, since neither matters without contention. By default the threads also keep off one CPU
// (PASSWORD_HASH_CPUS; `taskset` on the thread id), whose caches argon2id then never floods.
// Measured in docs/scaling.md, "Login flood".
// The count of computations at once is bounded by the caller (PasswordHasher's Semaphore), so
// there is always an idle thread when run() is called.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/** The worker's code: CommonJS, evaluated (no file, so no TypeScript loader is needed in it). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const argon2 = require(workerData.argon2)
let tid
try {
  // /proc/thread-self names this thread; on Linux both calls below can address one thread by it.
  tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop())
} catch {
  // not Linux: the thread keeps the process's priority
}
let idle = false
if (tid !== undefined && workerData.policy === 'idle') {
  const chrt = require('node:child_process').spawnSync('chrt', ['--idle', '--pid', '0', String(tid)], { stdio: 'ignore', timeout: 5000 })
  idle = chrt.status === 0
  if (!idle) parentPort.postMessage({ warning: 'password hashing: chrt --idle failed (no util-linux?); the hashing threads run at nice ' + workerData.nice + ' instead' })
}
if (tid !== undefined && !idle && workerData.nice > 0) {
  try {
    require('node:os').setPriority(tid, workerData.nice)
  } catch {
    // not allowed: the thread keeps the process's priority
  }
}
if (tid !== undefined && workerData.cpus !== undefined) {
  const taskset = require('node:child_process').spawnSync('taskset', ['--cpu-list', '--pid', workerData.cpus, String(tid)], { stdio: 'ignore', timeout: 5000 })
  if (taskset.status !== 0) parentPort.postMessage({ warning: 'password hashing: taskset failed (no util-linux?); the hashing threads run on any CPU' })
}
parentPort.on('message', ({ op, password, hash, options }) => {
  try {
    const value = op === 'hash' ? argon2.hashSync(password, options) : argon2.verifySync(hash, password)
    parentPort.postMessage({ value })
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) })
  }
})
`

export type PasswordJob =
  | { readonly op: 'hash', readonly password: string, readonly options: object }
  | { readonly op: 'verify', readonly hash: string, readonly password: string }

/**
 * How the hashing threads yield the CPU: `idle`, SCHED_IDLE (falling back to `nice` where it
 * cannot be set), or `normal`, only the nice value (0-19; 0 is the process's own priority).
 */
export interface HashThreadPriority {
  readonly policy: 'idle' | 'normal'
  readonly nice: number
  /**
   * The CPUs the threads may run on (`taskset`; Linux), or any. hashingCpus() leaves out the
   * first the process may use, so argon2id never streams its 19 MiB through that core's caches
   * and a waking event loop finds it without preempting a hash.
   */
  readonly cpus?: readonly number[]
}

/** The CPUs this process may run on (Linux), or undefined where unknown. */
export function allowedCpus(): number[] | undefined {
  try {
    return parseCpusAllowed(readFileSync('/proc/self/status', 'utf8'))
  } catch {
    return undefined // not Linux
  }
}

/** The Cpus_allowed_list of a /proc status file ("0-3,8"), as CPU numbers. */
export function parseCpusAllowed(status: string): number[] | undefined {
  const list = /^Cpus_allowed_list:\s*([\d,-]+)$/m.exec(status)?.[1]
  const cpus: number[] = []
  for (const range of list?.split(',') ?? []) {
    const [first, last = first] = range.split('-').map((cpu) => Number.parseInt(cpu, 10))
    if (!Number.isInteger(first) || !Number.isInteger(last)) return undefined
    for (let cpu = first!; cpu <= last!; cpu++) cpus.push(cpu)
  }
  return cpus.length > 0 ? cpus : undefined
}

/**
 * Where `threads` hashing threads run (PASSWORD_HASH_CPUS): `all-but-one`, every CPU the process
 * may use but the first, where that still leaves one per thread (PASSWORD_HASH_CONCURRENCY's
 * default, the cores less one, always does); otherwise, or with `all`, any CPU. Measured in
 * docs/scaling.md, "Login flood".
 */
export function hashingCpus(setting: 'all-but-one' | 'all', threads: number, cpus: readonly number[] | undefined): number[] | undefined {
  if (setting === 'all' || cpus === undefined || cpus.length - 1 < threads) return undefined
  return cpus.slice(1)
}

/** A hashing thread died or could not be had: a server error (500 path), never a wrong password. */
export class PasswordThreadError extends Error {}

interface Pending {
  resolve(value: string | boolean): void
  reject(error: Error): void
}

class HashThread {
  private readonly worker: Worker
  private pending: Pending | undefined
  dead = false

  constructor(priority: HashThreadPriority, onWarning: (message: string) => void) {
    const argon2 = createRequire(import.meta.url).resolve('@node-rs/argon2')
    const { policy, nice, cpus } = priority
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { argon2, policy, nice, cpus: cpus?.join(',') } })
    this.worker.on('message', (message: { value?: string | boolean, error?: string, warning?: string }) => {
      if (message.warning !== undefined) return onWarning(message.warning)
      const pending = this.pending
      this.pending = undefined
      this.worker.unref()
      if (message.error !== undefined) pending?.reject(new Error(message.error))
      else pending?.resolve(message.value!)
    })
    const fail = (error: Error) => {
      this.dead = true
      this.pending?.reject(error instanceof PasswordThreadError ? error : new PasswordThreadError(`password hashing thread failed: ${error.message}`))
      this.pending = undefined
    }
    this.worker.on('error', fail)
    this.worker.on('exit', (code) => fail(new PasswordThreadError(`password hashing thread exited with code ${code}`)))
    // Referenced only while it computes: an idle thread never keeps the process alive. (After
    // the listeners: a 'message' listener refs the worker's port again.)
    this.worker.unref()
  }

  get idle(): boolean {
    return !this.dead && this.pending === undefined
  }

  run(job: PasswordJob): Promise<string | boolean> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject }
      this.worker.ref()
      this.worker.postMessage(job)
    })
  }

  async close(): Promise<void> {
    await this.worker.terminate()
  }
}

/** Up to `size` hashing threads, started on first use (none at rest), at `priority`. */
export class PasswordThreads {
  private threads: HashThread[] = []

  private readonly warned = new Set<string>()

  /** `onWarning`: where a thread reports that its priority or CPUs could not be set (once each). */
  constructor(
    private readonly size: number,
    private readonly priority: HashThreadPriority,
    private readonly onWarning: (message: string) => void = (message) => process.emitWarning(message)
  ) {}

  run(job: PasswordJob): Promise<string | boolean> {
    this.threads = this.threads.filter((thread) => !thread.dead)
    let thread = this.threads.find((candidate) => candidate.idle)
    if (!thread) {
      if (this.threads.length >= this.size) return Promise.reject(new PasswordThreadError('every password hashing thread is busy'))
      thread = new HashThread(this.priority, (message) => {
        if (this.warned.has(message)) return
        this.warned.add(message)
        this.onWarning(message)
      })
      this.threads.push(thread)
    }
    return thread.run(job)
  }

  async close(): Promise<void> {
    const threads = this.threads
    this.threads = []
    await Promise.all(threads.map((thread) => thread.close()))
  }

  /** Ends the threads that are not computing: each holds a V8 isolate and argon2's last 19 MiB. */
  async releaseIdle(): Promise<void> {
    const idle = this.threads.filter((thread) => thread.idle)
    this.threads = this.threads.filter((thread) => !idle.includes(thread))
    await Promise.all(idle.map((thread) => thread.close()))
  }
}
