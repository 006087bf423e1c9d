import type { AuthEventKind } from '../db/types.js'
import type { Executor } from './executor.js'

/** What is recorded about an event besides whose session it concerns. */
export interface AuditFacts {
  readonly kind: AuthEventKind
  readonly at: Date
  readonly ip?: string
  readonly userAgent?: string
  readonly detail?: Record<string, unknown>
  /** The machine client that acted (the admin endpoints); absent: the user or the service itself. */
  readonly actorClientId?: string
}

export interface AuditEvent extends AuditFacts {
  readonly userId: string | null
  readonly sessionId: string | null
}

export const AUDIT_COLUMNS = ['occurred_at', 'kind', 'ip', 'user_agent', 'detail', 'actor_client_id', 'user_id', 'session_id'] as const

/** The placeholders of auditValues starting at $`first`, cast so PostgreSQL knows their types. */
export function auditPlaceholders(first: number): string {
  return ['timestamptz', 'text', 'text', 'text', 'jsonb', 'text'].map((type, i) => `$${first + i}::${type}`).join(', ')
}

/**
 * The constant part of an audit row as parameters, in AUDIT_COLUMNS order, for the
 * `insert into auth_events select …` statements that record an event in the same statement as
 * the change it describes.
 */
export function auditValues(facts: AuditFacts): unknown[] {
  return [facts.at, facts.kind, facts.ip ?? null, facts.userAgent ?? null, facts.detail ? JSON.stringify(facts.detail) : null, facts.actorClientId ?? null]
}

export async function insertAuthEvent(db: Executor, event: AuditEvent): Promise<void> {
  await db
    .insertInto('auth_events')
    .values({
      occurred_at: event.at,
      kind: event.kind,
      user_id: event.userId,
      session_id: event.sessionId,
      ip: event.ip ?? null,
      user_agent: event.userAgent ?? null,
      detail: event.detail ? JSON.stringify(event.detail) : null,
      actor_client_id: event.actorClientId ?? null
    })
    .execute()
}

/** Retention: deletes up to `limit` events older than `cutoff`; called until it returns fewer. */
export async function deleteAuthEventsBefore(db: Executor, cutoff: Date, limit: number): Promise<number> {
  const rows = await db
    .deleteFrom('auth_events')
    .where('id', 'in', (eb) =>
      eb.selectFrom('auth_events').select('id').where('occurred_at', '<', cutoff).limit(limit).forUpdate().skipLocked()
    )
    .returning('id')
    .execute()
  return rows.length
}
