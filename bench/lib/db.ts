// Direct database access for the benchmark, PostgreSQL only: counting the bench's sessions
// (to check that a logout run deleted exactly as many sessions as it got 204s), the fixture rows
// of the jwt+DELETE baseline, and removing what the bench created when it is done.
import pg from 'pg'

export class BenchDatabase {
  private readonly pool: pg.Pool

  constructor(connectionString: string) {
    this.pool = new pg.Pool({
      connectionString,
      max: 2,
      connectionTimeoutMillis: 5_000,
      statement_timeout: 120_000,
      query_timeout: 130_000
    })
    this.pool.on('error', () => {})
  }

  /**
   * Clears the dead rows that earlier runs' deletes left behind. Without it a server with
   * autovacuum off (as on the CI machine) slows down from run to run: a bench run deletes tens of
   * thousands of sessions.
   */
  async vacuum(): Promise<void> {
    await this.pool.query('VACUUM (ANALYZE) user_sessions, auth_events, users')
  }

  /** Live rows in user_sessions that belong to these users. */
  async countSessions(userIds: readonly string[]): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM user_sessions WHERE user_id = ANY($1::uuid[])',
      [userIds]
    )
    return Number(rows[0].n)
  }

  /** A user row for the baseline's fixture sessions (never logs in: its hash is not a hash). */
  async createBaselineUser(email: string): Promise<string> {
    const { rows } = await this.pool.query<{ id: string }>(
      "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), $1, 'not-a-hash: benchmark baseline fixture') RETURNING id",
      [email]
    )
    return rows[0].id
  }

  /** `count` session rows for the baseline user; returns their ids. */
  async createBaselineSessions(userId: string, count: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      `INSERT INTO user_sessions (id, user_id, refresh_jti_hash, expires_at)
       SELECT gen_random_uuid(), $1, 'bench-baseline-' || gen_random_uuid()::text, now() + interval '1 day'
       FROM generate_series(1, $2::int)
       RETURNING id`,
      [userId, count]
    )
    return rows.map((row) => row.id)
  }

  /** Session rows shaped like a login's (bench/lib/fixtures.ts), in batches. */
  async insertSessions(rows: ReadonlyArray<{ id: string, userId: string, jtiHash: string }>, now: Date, expiresAt: Date): Promise<void> {
    for (let i = 0; i < rows.length; i += 10_000) {
      const batch = rows.slice(i, i + 10_000)
      await this.pool.query(
        `INSERT INTO user_sessions (id, user_id, refresh_jti_hash, rotated_at, created_at, last_used_at, expires_at, user_agent)
         SELECT id, user_id, jti_hash, $4, $4, $4, $5, 'auth-service bench fixture'
         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(id, user_id, jti_hash)`,
        [batch.map((r) => r.id), batch.map((r) => r.userId), batch.map((r) => r.jtiHash), now, expiresAt]
      )
    }
  }

  async deleteSessions(ids: readonly string[]): Promise<void> {
    await this.pool.query('DELETE FROM user_sessions WHERE id = ANY($1::uuid[])', [ids])
  }

  async deleteSessionsOf(userId: string): Promise<number> {
    const result = await this.pool.query('DELETE FROM user_sessions WHERE user_id = $1', [userId])
    return result.rowCount ?? 0
  }

  /** Removes the bench's users (their sessions go with them), their audit events and their Shared Signals events. */
  async deleteUsers(userIds: readonly string[]): Promise<{ users: number, events: number, securityEvents: number }> {
    const users = await this.pool.query('DELETE FROM users WHERE id = ANY($1::uuid[])', [userIds])
    const events = await this.pool.query('DELETE FROM auth_events WHERE user_id = ANY($1::uuid[])', [userIds])
    const securityEvents = await this.pool.query('DELETE FROM security_events WHERE user_id = ANY($1::uuid[])', [userIds])
    return { users: users.rowCount ?? 0, events: events.rowCount ?? 0, securityEvents: securityEvents.rowCount ?? 0 }
  }

  /** Rows in ssf_streams of these machine clients. */
  async countStreams(clientIds: readonly string[]): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM ssf_streams WHERE client_id = ANY($1::text[])', [clientIds])
    return Number(rows[0].n)
  }

  /** Rows in security_events that name this session (one per way it ended). */
  async countSecurityEvents(sessionId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*)::text AS n FROM security_events WHERE session_id = $1::uuid', [sessionId])
    return Number(rows[0].n)
  }

  /** Deletes the streams of these machine clients (a receiver that could not delete its own). */
  async deleteStreamsOf(clientIds: readonly string[]): Promise<number> {
    const result = await this.pool.query('DELETE FROM ssf_streams WHERE client_id = ANY($1::text[])', [clientIds])
    return result.rowCount ?? 0
  }

  async close(): Promise<void> {
    await this.pool.end()
  }
}
