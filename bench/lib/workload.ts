// The requests the scenarios send, and the client-side state behind them. Like real clients,
// the bench keeps each session's latest token pair: a refresh stores the rotated pair it gets
// back, a login adds the new session, a logout retires one. No token is ever sent twice to an
// endpoint that consumes it: every refresh presents a refresh token that has not been used yet,
// every logout ends a session no other request uses.
import { API, mapLimit, postJson, sessionFromTokenPair, type Session, type User } from './http.js'
import type { Op, OpSource } from './load.js'

/** A FIFO queue (amortised O(1) shift). */
class Queue<T> {
  private items: T[] = []
  private head = 0

  push(item: T): void {
    this.items.push(item)
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined as T
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  get length(): number {
    return this.items.length - this.head
  }

  drain(): T[] {
    const rest = this.items.slice(this.head)
    this.items = []
    this.head = 0
    return rest
  }
}

export interface WorkloadCounters {
  /** Sessions whose state the bench no longer knows (a refresh or logout without a clear answer). */
  unknown: number
  /** Refreshes and logouts cut off at the end of a timed run, then settled by a retry. */
  settledRefresh: number
  settledLogout: number
  /** Logins cut off at the end of a timed run: the server may have opened these sessions. */
  lostLogins: number
  /** Requests that had to be replaced by a verify because no session was free for them. */
  starvedRefresh: number
  starvedLogout: number
}

export class Workload {
  /** Sessions for verify, /me and refresh; never logged out by the bench. */
  readonly hot: Session[] = []
  /** Hot sessions not being refreshed right now, oldest refresh first. */
  private readonly idle = new Queue<Session>()
  /** Sessions reserved for logout: no other request ever uses them. */
  private readonly spare = new Queue<Session>()
  /** Sessions the bench logged out (204): their access tokens must now be rejected. */
  readonly loggedOut: Session[] = []
  /** Sessions in an unknown state (request lost or answered unexpectedly): left out of checks. */
  readonly unknown: Session[] = []
  readonly counters: WorkloadCounters = {
    unknown: 0, settledRefresh: 0, settledLogout: 0, lostLogins: 0, starvedRefresh: 0, starvedLogout: 0
  }
  private lostRefreshes: Session[] = []
  private lostLogouts: Session[] = []
  /** Logins answered 200 and logouts answered 204 since the last reset (for the DB check). */
  logins = 0
  logouts = 0
  private nextHot = 0
  private nextUser = 0

  constructor(readonly users: readonly User[]) {}

  addHot(session: Session): void {
    this.hot.push(session)
    this.idle.push(session)
  }

  addSpare(session: Session): void {
    this.spare.push(session)
  }

  get spareCount(): number {
    return this.spare.length
  }

  /** Takes up to `n` spare sessions out of the pool (for a logout run that uses exactly these). */
  takeSpare(n: number): Session[] {
    const taken: Session[] = []
    while (taken.length < n) {
      const session = this.spare.shift()
      if (!session) break
      taken.push(session)
    }
    return taken
  }

  spareSessions(): Session[] {
    const all = this.spare.drain()
    for (const session of all) this.spare.push(session)
    return all
  }

  verify(): Op {
    const session = this.hot[this.nextHot++ % this.hot.length]
    return { kind: 'verify', method: 'GET', path: `${API}/verify`, headers: { authorization: `Bearer ${session.access}` }, expect: 204 }
  }

  /**
   * POST /introspect of the next hot session's access token (the tokens verify sends), the
   * client authenticated by `authorization`: its id and secret by Basic (`introspect`), or a
   * machine token of its own by Bearer (`introspect-bearer`). Only `active: true` is a right answer.
   */
  introspect(authorization: string, kind = 'introspect'): Op {
    const session = this.hot[this.nextHot++ % this.hot.length]
    return {
      kind,
      method: 'POST',
      path: `${API}/introspect`,
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
      // A JWT is base64url and dots: nothing in it needs form encoding.
      body: `token=${session.access}`,
      expect: 200,
      accepts: isActive
    }
  }

  me(): Op {
    const session = this.hot[this.nextHot++ % this.hot.length]
    return { kind: 'me', method: 'GET', path: `${API}/me`, headers: { authorization: `Bearer ${session.access}` }, expect: 200 }
  }

  /** Rotates the session refreshed longest ago; its new pair goes back into the queue. */
  refresh(): Op {
    const session = this.idle.shift()
    if (!session) {
      this.counters.starvedRefresh++
      return this.verify()
    }
    return {
      kind: 'refresh',
      method: 'POST',
      path: `${API}/refresh`,
      body: JSON.stringify({ refresh_token: session.refresh }),
      expect: 200,
      done: (status, body) => {
        if (status === 200) {
          try {
            const pair = sessionFromTokenPair(body)
            session.refresh = pair.refresh
            session.access = pair.access
            this.idle.push(session)
            return
          } catch {
            // fall through: the session's state is unknown
          }
        }
        this.forget(session)
      },
      lost: () => this.lostRefreshes.push(session)
    }
  }

  /** Logs a user in (users round-robin); the new session becomes a spare for logouts. */
  login(): Op {
    const user = this.users[this.nextUser++ % this.users.length]
    return {
      kind: 'login',
      method: 'POST',
      path: `${API}/login`,
      body: JSON.stringify({ email: user.email, password: user.password }),
      expect: 200,
      done: (status, body) => {
        if (status !== 200) return
        try {
          this.spare.push(sessionFromTokenPair(body))
          this.logins++
        } catch {
          this.counters.unknown++
        }
      },
      lost: () => this.counters.lostLogins++
    }
  }

  /** Logs out one session: the given one, or the next spare. */
  logout(given?: Session): Op {
    const session = given ?? this.spare.shift()
    if (!session) {
      this.counters.starvedLogout++
      return this.verify()
    }
    return {
      kind: 'logout',
      method: 'POST',
      path: `${API}/logout`,
      headers: { authorization: `Bearer ${session.access}` },
      expect: 204,
      done: (status) => {
        if (status === 204) {
          this.loggedOut.push(session)
          this.logouts++
        } else {
          this.forget(session)
        }
      },
      lost: () => this.lostLogouts.push(session)
    }
  }

  /**
   * Settles the requests a timed run cut off. A refresh whose answer was lost is retried with
   * the same refresh token: inside REFRESH_REUSE_GRACE the service answers with the same new pair
   * (docs/api.md, "POST /refresh": a lost response is not theft), so the session stays usable. A logout whose answer
   * was lost is retried: 204 or 401 (already ended) both mean the session is gone. Call it right
   * after the run, well inside the grace window.
   */
  async settleLost(baseUrl: string): Promise<void> {
    const refreshes = this.lostRefreshes
    const logouts = this.lostLogouts
    this.lostRefreshes = []
    this.lostLogouts = []
    await mapLimit(refreshes, 8, async (session) => {
      try {
        const { status, text } = await postJson(`${baseUrl}${API}/refresh`, { refresh_token: session.refresh })
        if (status === 200) {
          const pair = sessionFromTokenPair(text)
          session.refresh = pair.refresh
          session.access = pair.access
          this.idle.push(session)
          this.counters.settledRefresh++
          return
        }
      } catch {
        // unknown below
      }
      this.forget(session)
    })
    await mapLimit(logouts, 8, async (session) => {
      try {
        const response = await fetch(`${baseUrl}${API}/logout`, {
          method: 'POST',
          headers: { authorization: `Bearer ${session.access}` },
          signal: AbortSignal.timeout(15_000)
        })
        await response.arrayBuffer()
        if (response.status === 204 || response.status === 401) {
          this.loggedOut.push(session)
          this.counters.settledLogout++
          return
        }
      } catch {
        // unknown below
      }
      this.forget(session)
    })
  }

  private forget(session: Session): void {
    this.unknown.push(session)
    this.counters.unknown++
    const index = this.hot.indexOf(session)
    if (index >= 0) this.hot.splice(index, 1)
  }
}

/** An introspection answer for a live token; a string test, so the load generator parses no JSON. */
const isActive = (body: string): boolean => body.includes('"active":true')

/** 90 % verify, 5 % refresh, 3 % login, 2 % logout, spread evenly over every 100 requests. */
export const MIXED_SHARES = { verify: 90, refresh: 5, login: 3, logout: 2 } as const

export function mixedSource(workload: Workload): OpSource {
  const slots: Array<keyof typeof MIXED_SHARES> = []
  // Place each kind at evenly spaced positions (largest remainder first), so every window of
  // 100 requests has exactly the configured mix and the rare kinds are not bunched together.
  const positions: Array<{ kind: keyof typeof MIXED_SHARES, at: number }> = []
  for (const [kind, share] of Object.entries(MIXED_SHARES) as Array<[keyof typeof MIXED_SHARES, number]>) {
    for (let i = 0; i < share; i++) positions.push({ kind, at: (i + 0.5) / share })
  }
  positions.sort((a, b) => a.at - b.at)
  for (const { kind } of positions) slots.push(kind)
  let i = 0
  return () => {
    const kind = slots[i++ % slots.length]
    switch (kind) {
      case 'verify': return workload.verify()
      case 'refresh': return workload.refresh()
      case 'login': return workload.login()
      case 'logout': return workload.logout()
    }
  }
}
