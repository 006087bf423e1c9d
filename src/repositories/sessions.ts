import type { NewSessionRow, SessionRow } from '../db/types.js'
import { AUDIT_COLUMNS, auditSelection, type AuditFacts } from './auth-events.js'
import type { Executor } from './executor.js'

export type RotatedSession = Pick<SessionRow, 'id' | 'user_id' | 'rotated_at' | 'expires_at'>

/** A rotated session with its user, for the token pair: read by the rotating statement itself. */
export interface RotatedSessionWithUser extends RotatedSession {
  email: string
  display_name: string | null
  user_created_at: Date
}

// `update user_sessions … from users`: the session's user comes back with the rotation, so a
// refresh is one round trip. Every column is qualified (both tables have `id`).
const ROTATION_COLUMNS = [
  'user_sessions.id',
  'user_sessions.user_id',
  'user_sessions.rotated_at',
  'user_sessions.expires_at',
  'users.email',
  'users.display_name',
  'users.created_at as user_created_at'
] as const

/** Opens a session and records the event (login, register) in the same statement. */
export async function insertSession(db: Executor, session: NewSessionRow, audit: AuditFacts): Promise<void> {
  await db
    .with('started', (qb) => qb.insertInto('user_sessions').values(session).returning(['id', 'user_id']))
    .insertInto('auth_events')
    .columns(AUDIT_COLUMNS)
    .expression((eb) => eb.selectFrom('started').select([...auditSelection(audit), 'started.user_id', 'started.id']))
    .execute()
}

/**
 * Rotation in one conditional statement: it succeeds only while `currentHash` is still the
 * session's refresh jti, so concurrent refreshes cannot both rotate, and a deleted session
 * (logout) can never be brought back.
 */
export async function rotateRefreshJti(
  db: Executor,
  rotation: { sessionId: string, userId: string, currentHash: string, nextHash: string, now: Date }
): Promise<RotatedSessionWithUser | undefined> {
  return db
    .updateTable('user_sessions')
    .from('users')
    .set((eb) => ({
      previous_jti_hash: eb.ref('user_sessions.refresh_jti_hash'),
      refresh_jti_hash: rotation.nextHash,
      rotated_at: rotation.now,
      last_used_at: rotation.now
    }))
    .whereRef('users.id', '=', 'user_sessions.user_id')
    .where('user_sessions.id', '=', rotation.sessionId)
    .where('user_sessions.user_id', '=', rotation.userId)
    .where('user_sessions.refresh_jti_hash', '=', rotation.currentHash)
    .where('user_sessions.expires_at', '>', rotation.now)
    .returning(ROTATION_COLUMNS)
    .executeTakeFirst()
}

/**
 * The grace-window replay: matches only when `presentedHash` is the jti that the last rotation
 * replaced, the current jti is the one derived from it, and that rotation is recent enough.
 */
export async function touchRecentlyRotated(
  db: Executor,
  replay: { sessionId: string, userId: string, presentedHash: string, currentHash: string, rotatedAfter: Date, now: Date }
): Promise<RotatedSessionWithUser | undefined> {
  return db
    .updateTable('user_sessions')
    .from('users')
    .set({ last_used_at: replay.now })
    .whereRef('users.id', '=', 'user_sessions.user_id')
    .where('user_sessions.id', '=', replay.sessionId)
    .where('user_sessions.user_id', '=', replay.userId)
    .where('user_sessions.previous_jti_hash', '=', replay.presentedHash)
    .where('user_sessions.refresh_jti_hash', '=', replay.currentHash)
    .where('user_sessions.rotated_at', '>', replay.rotatedAfter)
    .where('user_sessions.expires_at', '>', replay.now)
    .returning(ROTATION_COLUMNS)
    .executeTakeFirst()
}

export interface SessionSelection {
  readonly userId: string
  /** Only this session (else every session of the user). */
  readonly sessionId?: string
  /** Every session of the user but this one. */
  readonly exceptSessionId?: string
}

/**
 * Ends sessions: deletes them and records one audit event per deleted session, in one statement
 * (so the history can never miss a deletion). Returns the ids actually deleted; none if they
 * were already gone. The delete trigger then tells every instance.
 */
export async function endSessions(db: Executor, selection: SessionSelection, audit: AuditFacts): Promise<string[]> {
  const rows = await db
    .with('ended', (qb) => {
      let query = qb.deleteFrom('user_sessions').where('user_id', '=', selection.userId)
      if (selection.sessionId !== undefined) query = query.where('id', '=', selection.sessionId)
      if (selection.exceptSessionId !== undefined) query = query.where('id', '<>', selection.exceptSessionId)
      return query.returning(['id', 'user_id'])
    })
    .insertInto('auth_events')
    .columns(AUDIT_COLUMNS)
    .expression((eb) => eb.selectFrom('ended').select([...auditSelection(audit), 'ended.user_id', 'ended.id']))
    .returning('session_id')
    .execute()
  return rows.map((row) => row.session_id!)
}

/**
 * The owner of a session that exists and has not expired, else undefined: the liveness check
 * behind every access token.
 */
export async function findLiveSessionOwner(db: Executor, sessionId: string, now: Date): Promise<string | undefined> {
  const row = await db
    .selectFrom('user_sessions')
    .select('user_id')
    .where('id', '=', sessionId)
    .where('expires_at', '>', now)
    .executeTakeFirst()
  return row?.user_id
}

export async function listSessionsOfUser(db: Executor, userId: string, now: Date) {
  return db
    .selectFrom('user_sessions')
    .select(['id', 'created_at', 'last_used_at', 'expires_at', 'user_agent', 'ip'])
    .where('user_id', '=', userId)
    .where('expires_at', '>', now)
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .execute()
}

/**
 * Deletes up to `limit` expired sessions; the clean-up calls it until it returns fewer. Rows
 * another instance's clean-up is deleting are skipped rather than waited for.
 */
export async function deleteExpiredSessions(db: Executor, now: Date, limit: number): Promise<number> {
  const rows = await db
    .deleteFrom('user_sessions')
    .where('id', 'in', (eb) =>
      eb.selectFrom('user_sessions').select('id').where('expires_at', '<=', now).limit(limit).forUpdate().skipLocked()
    )
    .returning('id')
    .execute()
  return rows.length
}
