import { hash, verify, type Algorithm } from '@node-rs/argon2'
import { QueueFullError, Semaphore } from '../concurrency.js'
import { PasswordHashingBusyError } from './errors.js'
import { PasswordThreadError, PasswordThreads, type HashThreadPriority } from './password-threads.js'

// OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1. The functions below run it
// on libuv's thread pool (scripts, tests); the service's PasswordHasher on threads of its own.
const ARGON2_OPTIONS = {
  algorithm: 2 as Algorithm, // Algorithm.Argon2id (a const enum, which isolatedModules cannot import)
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1
} as const

export async function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_OPTIONS)
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password)
  } catch {
    return false // a corrupt stored hash never logs anyone in
  }
}

/** The hash an unknown email's login is checked against (made once per process). */
let dummyHash: Promise<string> | undefined

export interface PasswordHashingLimits {
  /** argon2id computations at once (PASSWORD_HASH_CONCURRENCY). */
  readonly concurrency: number
  /** Computations waiting for a slot (PASSWORD_HASH_QUEUE); one more is refused. */
  readonly queue: number
  /**
   * How long a refused request is held before its 503 is sent (default 1000 ms, the
   * Retry-After it carries). A flood's connections send their next login as soon as the answer
   * is back, and an answer at once let 20 connections send thousands a second: each costs the
   * event loop about what a /verify does, so the refusals themselves took most of /verify's
   * throughput (bench/README.md, "flood"). A held request costs a timer, not CPU.
   */
  readonly refusalDelayMs?: number
  /**
   * The OS priority of the hashing threads (PASSWORD_HASH_POLICY and PASSWORD_HASH_NICE; default
   * here `normal` at nice 0, the process's own). Below the process's, a machine short of CPU
   * serves the event loop (/verify) first and hashing with what is left; an idle one hashes at
   * full speed (services/password-threads.ts).
   */
  readonly priority?: HashThreadPriority
}

/** PasswordHashingLimits.refusalDelayMs's default: the Retry-After of the 503. */
export const REFUSAL_DELAY_MS = 1000

/**
 * argon2id behind a bound: at most `concurrency` computations at once and `queue` waiting, in
 * order; past that PasswordHashingBusyError (503 with Retry-After), held for `refusalDelayMs` first. Each computation takes
 * a core for tens of milliseconds, so a flood of logins (credential stuffing from many addresses,
 * which per-address limits do not stop) would otherwise take every core from the requests that
 * need none, `/verify` first; the default leaves one core to the event loop (docs/decisions.md,
 * "Bounded password hashing").
 */
export class PasswordHasher {
  private readonly slots: Semaphore
  private readonly threads: PasswordThreads

  /** `onWarning`: the hashing threads' priority or CPUs could not be set (the app's log). */
  constructor(readonly limits: PasswordHashingLimits, onWarning?: (message: string) => void) {
    this.slots = new Semaphore(limits.concurrency, limits.queue)
    this.threads = new PasswordThreads(limits.concurrency, limits.priority ?? { policy: 'normal', nice: 0 }, onWarning)
  }

  /** Ends the hashing threads (the app's onClose). */
  close(): Promise<void> {
    return this.threads.close()
  }

  /** Ends the threads not computing now (src/idle-memory.ts); the next hash starts one again. */
  releaseIdleThreads(): Promise<void> {
    return this.threads.releaseIdle()
  }

  /** Computations running and waiting now. */
  get load(): { readonly active: number, readonly waiting: number } {
    return this.slots.load
  }

  /**
   * Whether a computation asked for now would be refused: the routes that hash check it before
   * they do anything else (routes/auth.ts), so that a refused login costs no database lookup
   * and no body parsing. A flood's connections send their next login as soon as the 503 is
   * back, so what a 503 costs is what the flood takes from /verify (bench/README.md, "flood").
   */
  get full(): boolean {
    return this.slots.full
  }

  /** Rejects with PasswordHashingBusyError (503 with Retry-After) when `full`, after the refusal delay. */
  async refuseWhenFull(): Promise<void> {
    if (this.slots.full) await this.refuse()
  }

  private async refuse(): Promise<never> {
    const delay = this.limits.refusalDelayMs ?? REFUSAL_DELAY_MS
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
    throw new PasswordHashingBusyError()
  }

  hash(password: string): Promise<string> {
    return this.bounded(async () => (await this.threads.run({ op: 'hash', password, options: ARGON2_OPTIONS })) as string)
  }

  verify(passwordHash: string, password: string): Promise<boolean> {
    return this.bounded(() => this.check(passwordHash, password))
  }

  /**
   * Spends the same argon2id time as a real check, for unknown emails: login answers an unknown
   * email and a wrong password alike, in about the same time (no account enumeration by timing).
   * Bounded like a real check: an unknown email is refused alike when busy.
   */
  burn(password: string): Promise<false> {
    return this.bounded(async () => {
      dummyHash ??= hashPassword('timing-equaliser-for-unknown-accounts')
      await this.check(await dummyHash, password)
      return false as const
    })
  }

  private async check(passwordHash: string, password: string): Promise<boolean> {
    try {
      return (await this.threads.run({ op: 'verify', hash: passwordHash, password })) as boolean
    } catch (error) {
      if (error instanceof PasswordThreadError) throw error // the thread failed, not the password
      return false // a corrupt stored hash never logs anyone in
    }
  }

  private async bounded<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await this.slots.run(work)
    } catch (error) {
      if (error instanceof QueueFullError) return this.refuse()
      throw error
    }
  }
}
