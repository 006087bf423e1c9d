/** The owners of those of `ids` that are live sessions (absent: gone or expired). */
export type OwnersQuery = (ids: readonly string[]) => Promise<ReadonlyMap<string, string>>

export interface SessionOwnerBatcherOptions {
  readonly query: OwnersQuery
  /** Queries in flight at once; lookups arriving meanwhile wait and go together in the next. */
  readonly maxInFlight: number
  /** Most session ids in one query. */
  readonly maxBatch: number
}

interface Waiter {
  readonly resolve: (owner: string | undefined) => void
  readonly reject: (err: unknown) => void
}

/**
 * Liveness checks the cache cannot answer, gathered into one query per event-loop turn instead of
 * a round trip each. Under load (tokens past the caches, or a whole cache dropped after the
 * revocation feed came back) requests arrive together, and while `maxInFlight` queries run, the
 * next ones queue up and go as one: the batch grows with the load, and one lone check waits only
 * for the end of the current turn. Repeated ids share one answer.
 */
export class SessionOwnerBatcher {
  private waiting = new Map<string, Waiter[]>()
  private inFlight = 0
  private scheduled = false

  constructor(private readonly options: SessionOwnerBatcherOptions) {}

  owner(sessionId: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const waiters = this.waiting.get(sessionId)
      if (waiters) waiters.push({ resolve, reject })
      else this.waiting.set(sessionId, [{ resolve, reject }])
      this.schedule()
    })
  }

  /** Lookups waiting for a query. */
  get queued(): number {
    return this.waiting.size
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight) return
    this.scheduled = true
    // After the I/O callbacks of this turn: every request read in it joins the batch.
    setImmediate(() => {
      this.scheduled = false
      this.flush()
    })
  }

  private flush(): void {
    while (this.waiting.size > 0 && this.inFlight < this.options.maxInFlight) {
      const batch = new Map<string, Waiter[]>()
      for (const [id, waiters] of this.waiting) {
        if (batch.size >= this.options.maxBatch) break
        batch.set(id, waiters)
        this.waiting.delete(id)
      }
      void this.run(batch)
    }
  }

  private async run(batch: Map<string, Waiter[]>): Promise<void> {
    this.inFlight++
    try {
      const owners = await this.options.query([...batch.keys()])
      for (const [id, waiters] of batch) for (const waiter of waiters) waiter.resolve(owners.get(id))
    } catch (err) {
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(err)
    } finally {
      this.inFlight--
      if (this.waiting.size > 0) this.flush()
    }
  }
}
