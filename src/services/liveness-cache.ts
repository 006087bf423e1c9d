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

  /** Records a "live" answer, unless a revocation for it arrived meanwhile (dead wins). */
  rememberAlive(sessionId: string, userId: string): void {
    if (!this.entries || this.aliveTtlMs <= 0) return
    if (this.entries.get(sessionId)?.alive === false) return
    this.entries.set(sessionId, { alive: true, userId }, { ttl: this.aliveTtlMs })
  }

  rememberDead(sessionId: string): void {
    this.entries?.set(sessionId, { alive: false, userId: '' })
  }

  /** Forget every "live" answer (the feed was down: revocations may have been missed). */
  clear(): void {
    this.entries?.clear()
  }

  get size(): number {
    return this.entries?.size ?? 0
  }

  get max(): number {
    return this.entries?.max ?? 0
  }
}
