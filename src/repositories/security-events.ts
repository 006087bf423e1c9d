// The Shared Signals event log (migrations/…_security_events.ts, docs/ssf.md): what the
// transmitter delivers. Rows are written by the statements that end sessions
// (repositories/sessions.ts) and by a password change or reset; nothing else writes here.
import type { AuditFacts } from './auth-events.js'
import type { Executor } from './executor.js'

/** CAEP 1.0's `initiating_entity`. */
export type InitiatingEntity = 'user' | 'admin' | 'policy' | 'system'

/** The CAEP event types this service emits (short names; the URIs are in services/ssf). */
export type SecurityEventType = 'session-revoked' | 'credential-change'

/** Who ended a session and why, as a session-revoked event tells it. */
export interface RevocationCause {
  readonly initiatingEntity: InitiatingEntity
  /** CAEP `reason_admin`, in English. */
  readonly reason: string
}

/** The cause of every ending of a session the audit trail records, by its facts. */
export function revocationCauseOf(facts: AuditFacts): RevocationCause {
  const scope = facts.detail?.scope
  switch (facts.kind) {
    case 'refresh_reuse':
      return { initiatingEntity: 'policy', reason: 'refresh token reuse' }
    case 'revoke':
      return { initiatingEntity: 'user', reason: 'token revoked' }
    case 'session_deleted':
      return { initiatingEntity: 'user', reason: 'session deleted' }
    case 'logout':
      if (scope === 'password_change') return { initiatingEntity: 'user', reason: 'password change' }
      if (scope === 'password_reset') return { initiatingEntity: 'user', reason: 'password reset' }
      if (scope === 'user_disabled') return { initiatingEntity: 'admin', reason: 'user disabled' }
      if (scope === 'admin_all' || scope === 'admin_one') return { initiatingEntity: 'admin', reason: 'ended by an administrator' }
      return { initiatingEntity: 'user', reason: 'logout' }
    default:
      return { initiatingEntity: 'system', reason: facts.kind }
  }
}

/** The columns and parameters of a session-revoked row for each session a statement deletes. */
export const SESSION_REVOKED_COLUMNS = 'occurred_at, event_type, user_id, session_id, initiating_entity, reason_admin'

/** credential-change (CAEP §3.3): the user's password was changed, in the transaction that changed it. */
export async function insertCredentialChange(db: Executor, userId: string, at: Date, cause: RevocationCause): Promise<void> {
  await db
    .insertInto('security_events')
    .values({
      occurred_at: at,
      event_type: 'credential-change',
      user_id: userId,
      session_id: null,
      initiating_entity: cause.initiatingEntity,
      reason_admin: cause.reason,
      detail: JSON.stringify({ credential_type: 'password', change_type: 'update' })
    })
    .execute()
}

/** Retention: deletes up to `limit` events older than `cutoff`; called until it returns fewer. */
export async function deleteSecurityEventsBefore(db: Executor, cutoff: Date, limit: number): Promise<number> {
  const rows = await db
    .deleteFrom('security_events')
    .where('id', 'in', (eb) => eb.selectFrom('security_events').select('id').where('occurred_at', '<', cutoff).limit(limit).forUpdate().skipLocked())
    .returning('id')
    .execute()
  return rows.length
}
