// The mail outbox (src/mail/outbox.ts is its sender). A row is
//   requested  a POST /password/forgot, not yet looked at (the address may be unknown);
//   pending    a mail with its token (sealed), due at next_attempt_at;
//   sent, failed, cancelled (superseded before it left): final, the sealed token erased.
// Rows are claimed with FOR UPDATE SKIP LOCKED: several instances never take the same one.
import type { RecoveryTokenKind } from '../db/types.js'
import type { Executor } from './executor.js'

export async function insertMailRequest(db: Executor, request: { kind: RecoveryTokenKind, email: string, now: Date }): Promise<void> {
  await db
    .insertInto('mail_outbox')
    .values({ kind: request.kind, state: 'requested', email: request.email, token_id: null, sealed_token: null, created_at: request.now, next_attempt_at: request.now, last_error: null, sent_at: null })
    .execute()
}

export async function insertPendingMail(db: Executor, mail: { kind: RecoveryTokenKind, email: string, tokenId: string, sealedToken: string, now: Date }): Promise<void> {
  await db
    .insertInto('mail_outbox')
    .values({ kind: mail.kind, state: 'pending', email: mail.email, token_id: mail.tokenId, sealed_token: mail.sealedToken, created_at: mail.now, next_attempt_at: mail.now, last_error: null, sent_at: null })
    .execute()
}

/** Inside a transaction: the oldest request no other sender holds, held until the transaction ends. */
export async function takeRequest(trx: Executor): Promise<{ id: string, kind: RecoveryTokenKind, email: string } | undefined> {
  return trx
    .selectFrom('mail_outbox')
    .select(['id', 'kind', 'email'])
    .where('state', '=', 'requested')
    .orderBy('id')
    .limit(1)
    .forUpdate()
    .skipLocked()
    .executeTakeFirst()
}

/** A request resolved to a mail: its token attached, due now. */
export async function attachToken(trx: Executor, id: string, tokenId: string, sealedToken: string, now: Date): Promise<void> {
  await trx.updateTable('mail_outbox').set({ state: 'pending', token_id: tokenId, sealed_token: sealedToken, next_attempt_at: now }).where('id', '=', id).execute()
}

/** A request for an address without an account (or a disabled one): nothing to send, nothing kept. */
export async function deleteMailRow(trx: Executor, id: string): Promise<void> {
  await trx.deleteFrom('mail_outbox').where('id', '=', id).execute()
}

/** The unsent mails of superseded tokens: never sent, their sealed tokens erased. */
export async function cancelMailsOfTokens(trx: Executor, tokenIds: readonly string[]): Promise<void> {
  if (tokenIds.length === 0) return
  await trx.updateTable('mail_outbox').set({ state: 'cancelled', sealed_token: null }).where('token_id', 'in', tokenIds).where('state', '=', 'pending').execute()
}

export interface ClaimedMail {
  id: string
  kind: RecoveryTokenKind
  email: string
  sealed_token: string | null
  attempts: number
}

/**
 * Claims up to `limit` due mails in one statement: each gets `leaseUntil` as its next attempt
 * (if this sender dies mid-send, another one retries it then) and one more attempt counted.
 * Rows another sender is claiming are skipped, never waited for.
 */
export async function claimDueMails(db: Executor, now: Date, leaseUntil: Date, limit: number): Promise<ClaimedMail[]> {
  return db
    .updateTable('mail_outbox')
    .set((eb) => ({ next_attempt_at: leaseUntil, attempts: eb('attempts', '+', 1) }))
    .where('id', 'in', (eb) =>
      eb.selectFrom('mail_outbox').select('id').where('state', '=', 'pending').where('next_attempt_at', '<=', now).orderBy('id').limit(limit).forUpdate().skipLocked()
    )
    .returning(['id', 'kind', 'email', 'sealed_token', 'attempts'])
    .execute()
}

/** Sent: final, the sealed token erased. False if the row was no longer pending (cancelled meanwhile). */
export async function markSent(db: Executor, id: string, now: Date): Promise<boolean> {
  const rows = await db.updateTable('mail_outbox').set({ state: 'sent', sent_at: now, sealed_token: null, last_error: null }).where('id', '=', id).where('state', '=', 'pending').returning('id').execute()
  return rows.length > 0
}

export async function scheduleRetry(db: Executor, id: string, at: Date, error: string): Promise<void> {
  await db.updateTable('mail_outbox').set({ next_attempt_at: at, last_error: error }).where('id', '=', id).where('state', '=', 'pending').execute()
}

/** Given up (or unsendable): final, the sealed token erased, the reason kept. */
export async function markFailed(db: Executor, id: string, error: string): Promise<void> {
  await db.updateTable('mail_outbox').set({ state: 'failed', sealed_token: null, last_error: error }).where('id', '=', id).where('state', '=', 'pending').execute()
}
