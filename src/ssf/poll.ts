// Long polls (RFC 8936, docs/ssf.md, "Long polls"): a waiting poll holds no database connection.
// It runs a short query, and if nothing is there waits on this in-process signal, which the
// `auth_security_event` notification (every instance's LISTEN connection) fires.

/** Fired when security events were recorded anywhere; a burst wakes each waiter once. */
export class EventSignal {
  /** Bumped by every notification: a waiter that saw an older value does not sleep. */
  generation = 0
  private readonly waiters = new Set<() => void>()
  private scheduled = false
  private ended = false

  notify(): void {
    this.generation++
    if (this.scheduled || this.waiters.size === 0) return
    this.scheduled = true
    // Notifications of one burst arrive together: the waiters wake once, after all of them.
    setImmediate(() => {
      this.scheduled = false
      this.wakeAll()
    })
  }

  /**
   * Resolves at the next notification after `seen` (at once if one came already), after `ms`,
   * when `abort` fires, or when the signal closes.
   */
  wait(seen: number, ms: number, abort?: AbortSignal): Promise<void> {
    if (this.ended || this.generation !== seen || abort?.aborted || ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.waiters.delete(done)
        abort?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.waiters.add(done)
      abort?.addEventListener('abort', done, { once: true })
    })
  }

  get waiting(): number {
    return this.waiters.size
  }

  get closed(): boolean {
    return this.ended
  }

  /** Shutting down: every wait ends now, and later ones do not wait. */
  close(): void {
    this.ended = true
    this.wakeAll()
  }

  private wakeAll(): void {
    const waiters = [...this.waiters]
    this.waiters.clear()
    for (const wake of waiters) wake()
  }
}

export interface LongPollOptions<T> {
  readonly signal: EventSignal
  /** Milliseconds to wait for something to deliver. */
  readonly timeoutMs: number
  readonly abort?: AbortSignal
  /**
   * One short query: what there is to deliver now (`ready`), and whether other events are
   * committed but not yet below the horizon (`settling`: re-check soon), seen in one snapshot.
   */
  readonly read: () => Promise<{ ready: boolean, settling: boolean, result: T }>
}

/** Re-checks of events settling above the horizon: the first after this long, doubling up to MAX. */
export const FIRST_RECHECK_MS = 5
export const MAX_RECHECK_MS = 1_000

/**
 * Reads until something is ready or the time is up. After a wake-up the new event may not be
 * below the horizon yet (an older transaction still running), and no further notification will
 * say when it is: then it re-checks with a doubling back-off.
 */
export async function longPoll<T>(options: LongPollOptions<T>): Promise<T> {
  const deadline = Date.now() + options.timeoutMs
  let recheckMs = FIRST_RECHECK_MS
  for (;;) {
    const seen = options.signal.generation
    const { ready, settling, result } = await options.read()
    const remaining = deadline - Date.now()
    if (ready || remaining <= 0 || options.abort?.aborted || options.signal.closed) return result
    if (settling) {
      await options.signal.wait(seen, Math.min(recheckMs, remaining), options.abort)
      recheckMs = Math.min(recheckMs * 2, MAX_RECHECK_MS)
      continue
    }
    recheckMs = FIRST_RECHECK_MS
    await options.signal.wait(seen, remaining, options.abort)
    if (options.abort?.aborted) return result
  }
}
