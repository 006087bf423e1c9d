import type { NewSessionRow, SessionRow } from '../db/types.js'
import { AUDIT_COLUMNS, auditPlaceholders, auditValues, type AuditFacts } from './auth-events.js'
import { runStatement, type Executor } from './executor.js'
import { revocationCauseOf, SESSION_REVOKED_COLUMNS } from './security-events.js'

export type RotatedSession = Pick<SessionRow, 'id' | 'user_id' | 'rotated_at' | 'expires_at'>

/** A rotated session with its user, for the token pair: read by the rotating statement itself. */
export interface RotatedSessionWithUser extends RotatedSession {
  email: string
  display_name: string | null
  email_verified: boolean
  user_created_at: Date
}

// `update user_sessions … from users`: the session's user comes back with the rotation, so a
// refresh is one round trip. Every column is qualified (both tables have `id`).
const ROTATION_RETURNING = `
  returning user_sessions.id, user_sessions.user_id, user_sessions.rotated_at, user_sessions.expires_at,
            users.email, users.display_name, users.email_verified, users.created_at as user_created_at`

// The hot-path statements, built once: fixed texts, values always as parameters (runStatement).
// Only for a user who is not disabled. `for key share` (the lock the foreign key check takes
// anyway) makes a disable that holds the user row `for update` (repositories/users.ts) wait for
// this login's commit, and its deletion then ends the new session; or makes this insert wait for
// the disable's commit and then find the user disabled. No session survives a disable.
const INSERT_SESSION = `
  with owner as (select id from users where id = $2 and not disabled for key share),
  started as (
    insert into user_sessions (id, user_id, refresh_jti_hash, previous_jti_hash, rotated_at, created_at, last_used_at,
                               expires_at, user_agent, ip)
    select $1::uuid, owner.id, $3::text, $4::text, $5::timestamptz, $6::timestamptz, $7::timestamptz, $8::timestamptz,
           $9::text, $10::text
    from owner
    returning id, user_id)
  insert into auth_events (${AUDIT_COLUMNS.join(', ')})
  select ${auditPlaceholders(11)}, started.user_id, started.id from started
  returning session_id`

const ROTATE_REFRESH_JTI = `
  update user_sessions
  set previous_jti_hash = user_sessions.refresh_jti_hash, refresh_jti_hash = $4, rotated_at = $5, last_used_at = $5
  from users
  where users.id = user_sessions.user_id and not users.disabled
    and user_sessions.id = $1 and user_sessions.user_id = $2
    and user_sessions.refresh_jti_hash = $3 and user_sessions.expires_at > $5
  ${ROTATION_RETURNING}`

const TOUCH_RECENTLY_ROTATED = `
  update user_sessions
  set last_used_at = $6
  from users
  where users.id = user_sessions.user_id and not users.disabled
    and user_sessions.id = $1 and user_sessions.user_id = $2
    and user_sessions.previous_jti_hash = $3 and user_sessions.refresh_jti_hash = $4
    and user_sessions.rotated_at > $5 and user_sessions.expires_at > $6
  ${ROTATION_RETURNING}`

/**
 * Deletes the selected sessions of user $1, audits each with $2-$7 and records its
 * session-revoked event (cause $8, $9) for the Shared Signals streams; `which` may use $10.
 */
const endSessionsStatement = (which: string) => `
  with ended as (delete from user_sessions where user_id = $1 ${which} returning id, user_id),
  revoked as (
    insert into security_events (${SESSION_REVOKED_COLUMNS})
    select $2::timestamptz, 'session-revoked', ended.user_id, ended.id, $8::text, $9::text from ended)
  insert into auth_events (${AUDIT_COLUMNS.join(', ')})
  select ${auditPlaceholders(2)}, ended.user_id, ended.id from ended
  returning session_id`
const END_SESSIONS = {
  all: endSessionsStatement(''),
  one: endSessionsStatement('and id = $10'),
  allBut: endSessionsStatement('and id <> $10')
}

const FIND_LIVE_SESSION_OWNERS = 'select id, user_id from user_sessions where id = any($1::uuid[]) and expires_at > $2'

/**
 * Opens a session and records the event (login, register) in the same statement; false, and
 * nothing written, if the user is disabled (or gone).
 */
export async function insertSession(db: Executor, session: Required<NewSessionRow>, audit: AuditFacts): Promise<boolean> {
  const rows = await runStatement(db, INSERT_SESSION, [
    session.id, session.user_id, session.refresh_jti_hash, session.previous_jti_hash, session.rotated_at,
    session.created_at, session.last_used_at, session.expires_at, session.user_agent, session.ip, ...auditValues(audit)
  ])
  return rows.length > 0
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
  const rows = await runStatement<RotatedSessionWithUser>(db, ROTATE_REFRESH_JTI,
    [rotation.sessionId, rotation.userId, rotation.currentHash, rotation.nextHash, rotation.now])
  return rows[0]
}

/**
 * The grace-window replay: matches only when `presentedHash` is the jti that the last rotation
 * replaced, the current jti is the one derived from it, and that rotation is recent enough.
 */
export async function touchRecentlyRotated(
  db: Executor,
  replay: { sessionId: string, userId: string, presentedHash: string, currentHash: string, rotatedAfter: Date, now: Date }
): Promise<RotatedSessionWithUser | undefined> {
  const rows = await runStatement<RotatedSessionWithUser>(db, TOUCH_RECENTLY_ROTATED,
    [replay.sessionId, replay.userId, replay.presentedHash, replay.currentHash, replay.rotatedAfter, replay.now])
  return rows[0]
}

export interface SessionSelection {
  readonly userId: string
  /** Only this session (else every session of the user). */
  readonly sessionId?: string
  /** Every session of the user but this one. */
  readonly exceptSessionId?: string
}

/**
 * Ends sessions: deletes them and records, per deleted session, its audit event and its
 * session-revoked security event, in one statement (so neither history can miss a deletion nor
 * tell of one that did not happen). Returns the ids actually deleted; none if they were already
 * gone. The delete trigger then tells every instance.
 */
export async function endSessions(db: Executor, selection: SessionSelection, audit: AuditFacts): Promise<string[]> {
  const [statement, target] = selection.sessionId !== undefined
    ? [END_SESSIONS.one, [selection.sessionId]]
    : selection.exceptSessionId !== undefined
      ? [END_SESSIONS.allBut, [selection.exceptSessionId]]
      : [END_SESSIONS.all, []]
  const cause = revocationCauseOf(audit)
  const rows = await runStatement<{ session_id: string }>(db, statement,
    [selection.userId, ...auditValues(audit), cause.initiatingEntity, cause.reason, ...target])
  return rows.map((row) => row.session_id)
}

/**
 * The owners of those sessions that exist and have not expired, by session id (canonical UUIDs):
 * the liveness check behind every access token, for many at once (services/session-owner-batcher.ts).
 */
export async function findLiveSessionOwners(db: Executor, sessionIds: readonly string[], now: Date): Promise<Map<string, string>> {
  const rows = await runStatement<{ id: string, user_id: string }>(db, FIND_LIVE_SESSION_OWNERS, [sessionIds, now])
  return new Map(rows.map((row) => [row.id, row.user_id]))
}

/**
 * Inside a transaction: whether the session exists, belongs to `userId` and has not expired, and
 * if so holds its row until the transaction ends, so that a concurrent deletion (a logout) waits
 * for the commit; a deletion that committed first makes this return false. `for key share` is
 * the weakest lock a DELETE waits for: refresh rotations (updates of non-key columns) do not.
 */
export async function holdLiveSession(trx: Executor, sessionId: string, userId: string, now: Date): Promise<boolean> {
  const row = await trx
    .selectFrom('user_sessions')
    .select('id')
    .where('id', '=', sessionId)
    .where('user_id', '=', userId)
    .where('expires_at', '>', now)
    .forKeyShare()
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

const IS_CURRENT_REFRESH_JTI = `
  select 1 from user_sessions
  where id = $1 and user_id = $2 and refresh_jti_hash = $3 and expires_at > $4`

/**
 * Whether `jtiHash` is the current refresh jti of a live session of `userId`: what makes a
 * refresh token active for introspection (one rotated away is not, even within the grace window).
 */
export async function isCurrentRefreshJti(db: Executor, sessionId: string, userId: string, jtiHash: string, now: Date): Promise<boolean> {
  const rows = await runStatement(db, IS_CURRENT_REFRESH_JTI, [sessionId, userId, jtiHash, now])
  return rows.length > 0
}
