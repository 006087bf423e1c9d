// Bulk fixtures for the curves, logout-all and cleanup scenarios (PostgreSQL only): sessions made
// by SQL for a user of the bench's own (generate_series, 100,000 rows a statement, shaped like a
// login's), their access tokens signed by the bench with the service's key, issuer and claims
// (src/auth/token-issuer.ts), so a million live tokens need no million logins. Also: the
// latency timeline of a load run (for "p99 before / during" a one-off operation) and the heap of
// a service started with the heap probe (bench/lib/heap-probe.mjs).
import { createHash, randomBytes } from 'node:crypto'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { ROOT, sleep } from './children.js'
import { serviceTokenIssuer } from './fixtures.js'
import { API } from './http.js'
import { runLoad, type LoadResult, type OpSource } from './load.js'
import type { Service, SigningKey } from './service.js'

const CHUNK = 100_000

export class BulkSessions {
  private readonly pool: pg.Pool

  constructor(connectionString: string) {
    this.pool = new pg.Pool({ connectionString, max: 2, connectionTimeoutMillis: 5_000, statement_timeout: 600_000, query_timeout: 610_000 })
    this.pool.on('error', () => {})
  }

  /** A user for bulk sessions (never logs in: its hash is not a hash). */
  async createUser(email: string): Promise<string> {
    const { rows } = await this.pool.query<{ id: string }>(
      "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), $1, 'not-a-hash: benchmark bulk fixture') RETURNING id", [email])
    return rows[0].id
  }

  /**
   * `count` sessions of `userId` expiring at `expiresAt` (in the past: expired rows), in
   * statements of 100,000 rows; returns their ids when `returnIds`. The refresh jti hash is a
   * random SHA-256 hex, as a login stores it.
   */
  async insertSessions(userId: string, count: number, expiresAt: Date, returnIds: boolean): Promise<string[]> {
    const ids: string[] = []
    for (let done = 0; done < count; done += CHUNK) {
      const n = Math.min(CHUNK, count - done)
      const { rows } = await this.pool.query<{ id: string }>(
        `INSERT INTO user_sessions (id, user_id, refresh_jti_hash, rotated_at, created_at, last_used_at, expires_at, user_agent)
         SELECT gen_random_uuid(), $1, encode(sha256(gen_random_uuid()::text::bytea), 'hex'), now(), now(), now(), $3, 'auth-service bench bulk fixture'
         FROM generate_series(1, $2::int)
         ${returnIds ? 'RETURNING id' : ''}`,
        [userId, n, expiresAt])
      if (returnIds) for (const row of rows) ids.push(row.id)
    }
    return ids
  }

  async countSessions(userId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM user_sessions WHERE user_id = $1', [userId])
    return Number(rows[0].n)
  }

  /**
   * Removes every session of `userId` without telling any instance: first expired (the delete
   * trigger announces only sessions live or expired less than a minute ago), then deleted.
   */
  async removeQuietly(userId: string): Promise<void> {
    await this.pool.query("UPDATE user_sessions SET expires_at = now() - interval '1 day' WHERE user_id = $1", [userId])
    await this.pool.query('DELETE FROM user_sessions WHERE user_id = $1', [userId])
  }

  async vacuum(): Promise<void> {
    await this.pool.query('VACUUM (ANALYZE) user_sessions')
  }

  /** Removes the users (and what is left of their sessions, quietly) and their audit and security events. */
  async deleteUsers(userIds: readonly string[]): Promise<void> {
    for (const id of userIds) await this.removeQuietly(id)
    await this.pool.query('DELETE FROM security_events WHERE user_id = ANY($1::uuid[])', [userIds])
    await this.pool.query('DELETE FROM auth_events WHERE user_id = ANY($1::uuid[])', [userIds])
    await this.pool.query('DELETE FROM users WHERE id = ANY($1::uuid[])', [userIds])
  }

  async close(): Promise<void> {
    await this.pool.end()
  }
}

/** Signs access tokens as the service at `issuerUrl` does (its PUBLIC_URL is the issuer unless JWT_ISSUER is set). */
export async function accessTokenSigner(key: SigningKey, issuerUrl: string): Promise<(userId: string, sessionIds: readonly string[]) => string[]> {
  const { config, tokens } = await serviceTokenIssuer(key, issuerUrl)
  return (userId, sessionIds) => {
    const now = new Date()
    const expiresAt = new Date(now.getTime() + config.tokens.refreshTtl * 1000)
    return sessionIds.map((sid) => tokens.issueAccessToken(userId, sid, expiresAt, now).token)
  }
}

/** A random stand-in refresh jti hash (as a login stores: SHA-256 hex). */
export const randomJtiHash = (): string => createHash('sha256').update(randomBytes(32)).digest('hex')

/** GET /verify over `tokens`, round-robin from a shared position (so runs continue the rotation). */
export function verifySource(tokens: readonly string[], position = { next: 0 }, path = `${API}/verify`): OpSource {
  return () => ({ kind: 'verify', method: 'GET', path, headers: { authorization: `Bearer ${tokens[position.next++ % tokens.length]}` }, expect: 204 })
}

export interface Timeline {
  readonly result: LoadResult
  /** Date.now() at each response, and its latency in ms. */
  readonly at: Float64Array
  readonly ms: Float64Array
  readonly count: number
}

/** A load run that keeps each response's time and latency (for p99 before and during an operation). */
export async function timeline(url: string, pid: number, next: OpSource, connections: number, seconds: number): Promise<Timeline> {
  let at = new Float64Array(1 << 16)
  let ms = new Float64Array(1 << 16)
  let count = 0
  const result = await runLoad({
    url, connections, duration: seconds, next, serverGroup: pid,
    onResponse: (_op, _status, latency) => {
      if (count === at.length) {
        const a = new Float64Array(at.length * 2)
        a.set(at)
        at = a
        const m = new Float64Array(ms.length * 2)
        m.set(ms)
        ms = m
      }
      at[count] = Date.now()
      ms[count++] = latency
    }
  })
  return { result, at, ms, count }
}

/** Count, p50, p99 and max latency of the responses that arrived in [from, to). */
export function window(t: Timeline, from: number, to: number): { count: number, p50: number, p99: number, max: number, reqPerSec: number } {
  const values: number[] = []
  for (let i = 0; i < t.count; i++) if (t.at[i] >= from && t.at[i] < to) values.push(t.ms[i])
  values.sort((a, b) => a - b)
  const pick = (p: number) => (values.length === 0 ? Number.NaN : values[Math.min(values.length - 1, Math.max(0, Math.ceil(p * values.length) - 1))])
  return { count: values.length, p50: pick(0.5), p99: pick(0.99), max: pick(1), reqPerSec: values.length / Math.max(0.001, (to - from) / 1000) }
}

/** Node flags for a service whose heap the bench reads: --expose-gc and the probe. */
export const HEAP_PROBE_ARGS = ['--expose-gc', '--import', pathToFileURL(path.join(ROOT, 'bench/lib/heap-probe.mjs')).href]

export interface Heap {
  readonly heapUsed: number
  readonly rss: number
  readonly external: number
  readonly arrayBuffers: number
}

/** Asks a service started with HEAP_PROBE_ARGS for a full GC and its memory afterwards. */
export async function readHeap(service: Service): Promise<Heap> {
  const marker = 'BENCH_HEAP '
  const seen = service.child.output().split(marker).length
  if (!service.child.running()) throw new Error(`the service exited (${service.child.process.exitCode ?? service.child.process.signalCode}) before its heap could be read:\n${service.child.output().slice(-3000)}`)
  process.kill(service.pid, 'SIGWINCH')
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const parts = service.child.output().split(marker)
    if (parts.length > seen) return JSON.parse(parts.at(-1)!.split('\n')[0]) as Heap
    await sleep(50)
  }
  throw new Error('the heap probe did not answer within 15 s')
}
