import type { NewSessionRow, SessionRow } from '../db/types.js'
import type { Executor } from './executor.js'

export type RotatedSession = Pick<SessionRow, 'id' | 'user_id' | 'rotated_at' | 'expires_at'>

const ROTATION_COLUMNS = ['id', 'user_id', 'rotated_at', 'expires_at'] as const

export async function insertSession(db: Executor, session: NewSessionRow): Promise<void> {
  await db.insertInto('user_sessions').values(session).execute()
}

/**
 * Rotation in one conditional statement: it succeeds only while `currentHash` is still the
 * session's refresh jti, so concurrent refreshes cannot both rotate, and a deleted session
 * (logout) can never be brought back.
 */
export async function rotateRefreshJti(
  db: Executor,
  rotation: { sessionId: string, userId: string, currentHash: string, nextHash: string, now: Date }
): Promise<RotatedSession | undefined> {
  return db
    .updateTable('user_sessions')
    .set((eb) => ({
      previous_jti_hash: eb.ref('refresh_jti_hash'),
      refresh_jti_hash: rotation.nextHash,
      rotated_at: rotation.now,
      last_used_at: rotation.now
    }))
    .where('id', '=', rotation.sessionId)
    .where('user_id', '=', rotation.userId)
    .where('refresh_jti_hash', '=', rotation.currentHash)
    .where('expires_at', '>', rotation.now)
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
): Promise<RotatedSession | undefined> {
  return db
    .updateTable('user_sessions')
    .set({ last_used_at: replay.now })
    .where('id', '=', replay.sessionId)
    .where('user_id', '=', replay.userId)
    .where('previous_jti_hash', '=', replay.presentedHash)
    .where('refresh_jti_hash', '=', replay.currentHash)
    .where('rotated_at', '>', replay.rotatedAfter)
    .where('expires_at', '>', replay.now)
    .returning(ROTATION_COLUMNS)
    .executeTakeFirst()
}

/** Deletes one session of a user; returns the ids actually deleted (none if it was gone). */
export async function deleteSession(db: Executor, userId: string, sessionId: string): Promise<string[]> {
  const rows = await db
    .deleteFrom('user_sessions')
    .where('id', '=', sessionId)
    .where('user_id', '=', userId)
    .returning('id')
    .execute()
  return rows.map((row) => row.id)
}

/** Deletes every session of a user, or every one but `exceptSessionId`. */
export async function deleteSessionsOfUser(db: Executor, userId: string, exceptSessionId?: string): Promise<string[]> {
  let query = db.deleteFrom('user_sessions').where('user_id', '=', userId)
  if (exceptSessionId) query = query.where('id', '<>', exceptSessionId)
  const rows = await query.returning('id').execute()
  return rows.map((row) => row.id)
}

/** True while the session exists and has not expired: the liveness check behind every access token. */
export async function isSessionLive(db: Executor, sessionId: string, userId: string, now: Date): Promise<boolean> {
  const row = await db
    .selectFrom('user_sessions')
    .select('id')
    .where('id', '=', sessionId)
    .where('user_id', '=', userId)
    .where('expires_at', '>', now)
    .executeTakeFirst()
  return row !== undefined
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
