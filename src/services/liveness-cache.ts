import { LRUCache } from 'lru-cache'

interface Entry {
  readonly alive: boolean
  readonly userId: string
}

export interface LivenessCacheOptions {
  /** Most sessions remembered; the least recently used are dropped beyond it (bounded memory). */
  readonly max: number
  /** How long a "live" answer may be reused, in milliseconds. */
  readonly aliveTtlMs: number
}

/**
 * What this instance knows about sessions, so that checking an access token's session costs no
 * database round trip. A session that is gone stays gone (ids are never reused), so "dead" is
 * remembered as long as space allows; "alive" only for aliveTtlMs, and only while the
 * revocation feed is healthy (see plugins/liveness.ts).
 */
export class LivenessCache {
  private readonly entries: LRUCache<string, Entry> | undefined
  private readonly aliveTtlMs: number
  private clears = 0

  constructor(options: LivenessCacheOptions) {
    this.aliveTtlMs = options.aliveTtlMs
    this.entries = options.max > 0 ? new LRUCache<string, Entry>({ max: options.max, ttlAutopurge: false }) : undefined
  }

  /** true or false when known, undefined when the database must be asked. */
  lookup(sessionId: string, userId: string): boolean | undefined {
    const entry = this.entries?.get(sessionId)
    if (!entry) return undefined
    return entry.alive && entry.userId === userId
  }

  /** Changes whenever the cache is cleared; read it before asking the database. */
  get epoch(): number {
    return this.clears
  }

  /**
   * Records a "live" answer read from the database at `epoch`, unless a revocation for it
   * arrived meanwhile (dead wins) or the cache was cleared since (the answer may predate a
   * revocation that was missed).
   */
  rememberAlive(sessionId: string, userId: string, epoch: number): void {
    if (!this.entries || this.aliveTtlMs <= 0 || epoch !== this.clears) return
    if (this.entries.get(sessionId)?.alive === false) return
    this.entries.set(sessionId, { alive: true, userId }, { ttl: this.aliveTtlMs })
  }

  rememberDead(sessionId: string): void {
    this.entries?.set(sessionId, { alive: false, userId: '' })
  }

  /** Forget every "live" answer (the feed was down: revocations may have been missed). */
  clear(): void {
    this.clears += 1
    this.entries?.clear()
  }

  get size(): number {
    return this.entries?.size ?? 0
  }

  get max(): number {
    return this.entries?.max ?? 0
  }
}
