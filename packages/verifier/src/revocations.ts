// What the verifier knows of ended sessions: a bounded map from session id (and, for an event
// that names only a user, from user id) to the moment it ended and the moment it may be forgotten.
//
// A revoked session's access tokens were all issued before its end, and verify() refuses any token
// older than maxTokenAgeSec (its `iat` checked by jose), so once end + maxTokenAgeSec + the clock
// tolerance has passed no token of that session can pass verification anyway: the entry is dropped.
//
// The map is also capped. Dropping a live entry would let a revoked token through, so an entry
// evicted early is remembered as a horizon instead: until the last evicted entry would have expired,
// a token issued no later than the latest evicted end time cannot be told apart from a token of an
// evicted session, and the verifier treats it as it treats stale knowledge (503 or introspection).

export interface RevocationStoreOptions {
  /** The longest an access token may live, in ms (maxTokenAgeSec + clock tolerance). */
  readonly retainMs: number
  /** The most entries kept (sessions and users together). */
  readonly maxEntries: number
  readonly now: () => number
}

interface Entry {
  /** When the session (or every session of the user up to then) ended, ms since the epoch. */
  readonly endedAt: number
  readonly expiresAt: number
}

export type RevocationAnswer = 'revoked' | 'unknown' | 'clear'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The one form an id is compared in: a UUID in lower case (the auth service prints them so, and
 * PostgreSQL compares them case-insensitively), anything else exactly as written.
 */
export function canonicalId(id: string): string {
  return UUID.test(id) ? id.toLowerCase() : id
}

export class RevocationStore {
  private readonly sessions = new Map<string, Entry>()
  private readonly users = new Map<string, Entry>()
  /** Entries evicted before their time: the latest end among them, and when the last would expire. */
  private evictedEndedAt = -Infinity
  private evictedUntil = -Infinity
  private evictions = 0

  constructor(private readonly options: RevocationStoreOptions) {}

  get size(): number {
    return this.sessions.size + this.users.size
  }

  /** How many entries were dropped early because the map was full (a warning sign: raise the cap). */
  get evicted(): number {
    return this.evictions
  }

  /** A session ended at `endedAt` (ms). Returns false if it is already too old to matter. */
  revokeSession(sid: string, endedAt: number): boolean {
    return this.add(this.sessions, canonicalId(sid), endedAt)
  }

  /** Every session of a user that existed at `endedAt` ended then. */
  revokeUser(sub: string, endedAt: number): boolean {
    return this.add(this.users, canonicalId(sub), endedAt)
  }

  /**
   * Whether a token of session `sid`, user `sub`, issued at `iatMs`, is known revoked, known clear,
   * or cannot be told (an entry that could have named it was evicted early).
   */
  check(sid: string, sub: string, iatMs: number): RevocationAnswer {
    const now = this.options.now()
    const session = this.live(this.sessions, canonicalId(sid), now)
    if (session) return 'revoked'
    const user = this.live(this.users, canonicalId(sub), now)
    // A user-wide end covers the tokens issued up to it; a later login is a new session.
    if (user && iatMs <= user.endedAt) return 'revoked'
    if (now < this.evictedUntil && iatMs <= this.evictedEndedAt) return 'unknown'
    return 'clear'
  }

  /** Drops every entry whose tokens must have expired. */
  prune(): void {
    const now = this.options.now()
    for (const map of [this.sessions, this.users]) {
      for (const [key, entry] of map) if (entry.expiresAt <= now) map.delete(key)
    }
  }

  private live(map: Map<string, Entry>, key: string, now: number): Entry | undefined {
    const entry = map.get(key)
    if (!entry) return undefined
    if (entry.expiresAt <= now) {
      map.delete(key)
      return undefined
    }
    return entry
  }

  private add(map: Map<string, Entry>, key: string, endedAt: number): boolean {
    const now = this.options.now()
    const expiresAt = endedAt + this.options.retainMs
    if (expiresAt <= now) return false
    const known = map.get(key)
    // A later end is kept longer (a session) or covers more tokens (a user): the later one wins.
    if (known && known.expiresAt > now && known.endedAt >= endedAt) return true
    map.set(key, { endedAt, expiresAt })
    if (this.size > this.options.maxEntries) this.makeRoom()
    return true
  }

  /** Over the cap: drop what has expired, then the tenth of entries that expire soonest. */
  private makeRoom(): void {
    this.prune()
    if (this.size <= this.options.maxEntries) return
    const all: Array<[Map<string, Entry>, string, Entry]> = []
    for (const map of [this.sessions, this.users]) for (const [key, entry] of map) all.push([map, key, entry])
    all.sort((a, b) => a[2].expiresAt - b[2].expiresAt)
    const target = Math.floor(this.options.maxEntries * 0.9)
    for (let i = 0; i < all.length - target; i++) {
      const [map, key, entry] = all[i]
      map.delete(key)
      this.evictions++
      this.evictedEndedAt = Math.max(this.evictedEndedAt, entry.endedAt)
      this.evictedUntil = Math.max(this.evictedUntil, entry.expiresAt)
    }
  }
}
