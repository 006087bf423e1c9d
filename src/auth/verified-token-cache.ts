import { LRUCache } from 'lru-cache'
import type { TokenCaller } from './context.js'


/**
 * Access tokens whose signature and claims were checked once, keyed by the whole token string:
 * a gateway presents the same token many times, and the repeat costs a map lookup instead of a
 * decode, a hash and a signature check. Safe because revocation is not a property of the token:
 * the session behind it is checked on every request (plugins/liveness.ts), and an entry is never
 * used past the token's `exp`. Bounded: the least recently used tokens are dropped beyond `max`
 * (at most ~0.6 KB each: the token and two ids).
 */
export class VerifiedTokenCache {
  private readonly entries: LRUCache<string, TokenCaller> | undefined

  constructor(max: number) {
    this.entries = max > 0 ? new LRUCache<string, TokenCaller>({ max }) : undefined
  }

  /** The caller of a token verified before that has not expired at `nowMs`, else undefined. */
  lookup(token: string, nowMs: number): TokenCaller | undefined {
    const caller = this.entries?.get(token)
    if (!caller) return undefined
    if (caller.tokenExp * 1000 <= nowMs) {
      this.entries!.delete(token)
      return undefined
    }
    return caller
  }

  remember(token: string, caller: TokenCaller): void {
    if (Number.isFinite(caller.tokenExp)) this.entries?.set(token, caller)
  }

  get size(): number {
    return this.entries?.size ?? 0
  }
}
