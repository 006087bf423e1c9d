import { LRUCache } from 'lru-cache'

/**
 * Tokens whose signature and claims were checked once, keyed by the whole token string, with
 * what the check produced (the caller of an access token, the claims of a refresh token). A
 * gateway presents the same access token many times, and the repeat costs a map lookup instead
 * of a decode, a hash and a signature check; a refresh token is checked twice in one request
 * when rate limits are on (the per-session key, then the rotation). Safe because revocation is
 * not a property of the token: the session behind it is checked on every request
 * (plugins/liveness.ts, or the rotating UPDATE), and an entry is never used past the token's
 * `exp`. Bounded: the least recently used tokens are dropped beyond `max` (at most ~0.6 KB each).
 */
export class VerifiedTokenCache<T> {
  private readonly entries: LRUCache<string, T & {}> | undefined

  /** `expOf` reads the token's `exp` (seconds) from a cached entry. */
  constructor(max: number, private readonly expOf: (entry: T) => number) {
    this.entries = max > 0 ? new LRUCache<string, T & {}>({ max }) : undefined
  }

  /** What a token verified before produced, if it has not expired at `nowMs`, else undefined. */
  lookup(token: string, nowMs: number): T | undefined {
    const entry = this.entries?.get(token)
    if (entry === undefined) return undefined
    if (this.expOf(entry) * 1000 <= nowMs) {
      this.entries!.delete(token)
      return undefined
    }
    return entry
  }

  remember(token: string, entry: T & {}): void {
    if (Number.isFinite(this.expOf(entry))) this.entries?.set(token, entry)
  }

  get size(): number {
    return this.entries?.size ?? 0
  }
}
