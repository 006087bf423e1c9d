import { LRUCache } from 'lru-cache'

interface Entry<T> {
  readonly kind: string
  readonly value: T
  /** Epoch ms after which the token fails its claim rules (exp plus the clock tolerance). */
  readonly validUntilMs: number
}

/**
 * Tokens whose signature and claims were checked once, keyed by the whole token string: a
 * gateway presents the same access token many times, and the repeat costs a map lookup instead
 * of a decode and a signature check. Safe because revocation is not a property of the token (the
 * session behind it is checked on every request) and an entry is never used past the moment its
 * claim rules would reject it. Bounded: the least recently used tokens are dropped beyond `max`
 * (about 0.6 KB each: the token and its claims).
 */
export class VerifiedTokenCache<T> {
  private readonly entries: LRUCache<string, Entry<T>> | undefined

  constructor(max: number) {
    this.entries = max > 0 ? new LRUCache<string, Entry<T>>({ max }) : undefined
  }

  /** What `token` verified to as a token of `kind`, if it did and is still valid at `nowMs`. */
  lookup(token: string, kind: string, nowMs: number): T | undefined {
    const entry = this.entries?.get(token)
    if (!entry || entry.kind !== kind) return undefined
    if (nowMs > entry.validUntilMs) {
      this.entries!.delete(token)
      return undefined
    }
    return entry.value
  }

  remember(token: string, kind: string, value: T, validUntilMs: number): void {
    if (Number.isFinite(validUntilMs)) this.entries?.set(token, { kind, value, validUntilMs })
  }

  get size(): number {
    return this.entries?.size ?? 0
  }
}
