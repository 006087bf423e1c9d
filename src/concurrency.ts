// A counting semaphore with an optional bound on how many may wait: work beyond `limit` waits in
// order, and beyond `queue` waiting `acquire` fails at once (the caller answers 503).

export class QueueFullError extends Error {
  override name = 'QueueFullError'
}

export class Semaphore {
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor(readonly limit: number, readonly queue = Infinity) {}

  /** Running and waiting now. */
  get load(): { readonly active: number, readonly waiting: number } {
    return { active: this.active, waiting: this.waiting.length }
  }

  /** Whether `run` would fail at once now: every slot taken and `queue` waiting. */
  get full(): boolean {
    return this.active >= this.limit && this.waiting.length >= this.queue
  }

  /** Runs `work` once a slot is free; QueueFullError if `queue` are waiting already. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) {
      this.active++
    } else {
      if (this.waiting.length >= this.queue) throw new QueueFullError()
      // The slot is handed over by the work that ends (active stays counted).
      await new Promise<void>((resolve) => this.waiting.push(resolve))
    }
    try {
      return await work()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }
}
