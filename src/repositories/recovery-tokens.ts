// Password-reset and email-verification tokens (migrations/…_account_recovery.ts): the SHA-256
// of each, never the token; used once, superseded by a newer one of the same kind, expiring.
import type { RecoveryTokenKind, RecoveryTokensTable } from '../db/types.js'
import type { Executor } from './executor.js'

/** A user as recovery needs it, held for the transaction (see lockUserForRecovery). */
export interface RecoveryUser {
  id: string
  email: string
  display_name: string | null
  disabled: boolean
  email_verified: boolean
}

const RECOVERY_USER_COLUMNS = ['id', 'email', 'display_name', 'disabled', 'email_verified'] as const

/**
 * The user, its row held `for no key update` until the transaction ends: two recovery requests
 * of one user take turns (each supersedes the other's token, never both live), while logins and
 * refreshes (`for key share`) go on.
 */
export async function lockUserForRecovery(trx: Executor, by: { id: string } | { email: string }): Promise<RecoveryUser | undefined> {
  const query = trx.selectFrom('users').select(RECOVERY_USER_COLUMNS)
  const filtered = 'id' in by ? query.where('id', '=', by.id) : query.where('email', '=', by.email)
  return filtered.forNoKeyUpdate().executeTakeFirst()
}

/** Supersedes the user's live tokens of `kind`; returns their ids (their unsent mails are cancelled by the caller). */
export async function supersedeLiveTokens(trx: Executor, userId: string, kind: RecoveryTokenKind, now: Date): Promise<string[]> {
  const rows = await trx
    .updateTable('recovery_tokens')
    .set({ superseded_at: now })
    .where('user_id', '=', userId)
    .where('kind', '=', kind)
    .where('used_at', 'is', null)
    .where('superseded_at', 'is', null)
    .returning('id')
    .execute()
  return rows.map((row) => row.id)
}

export async function insertRecoveryToken(trx: Executor, token: Omit<RecoveryTokensTable, 'used_at' | 'superseded_at'>): Promise<void> {
  await trx.insertInto('recovery_tokens').values({ ...token, used_at: null, superseded_at: null }).execute()
}

export interface PresentedToken {
  id: string
  user_id: string
  kind: RecoveryTokenKind
  email: string
  expires_at: Date
  used_at: Date | null
  superseded_at: Date | null
  user_email: string
  display_name: string | null
  disabled: boolean
}

/** The token with this hash and its user, whatever its state; undefined if unknown. */
export async function findTokenByHash(db: Executor, tokenHash: string): Promise<PresentedToken | undefined> {
  return db
    .selectFrom('recovery_tokens')
    .innerJoin('users', 'users.id', 'recovery_tokens.user_id')
    .select([
      'recovery_tokens.id', 'recovery_tokens.user_id', 'recovery_tokens.kind', 'recovery_tokens.email',
      'recovery_tokens.expires_at', 'recovery_tokens.used_at', 'recovery_tokens.superseded_at',
      'users.email as user_email', 'users.display_name', 'users.disabled'
    ])
    .where('recovery_tokens.token_hash', '=', tokenHash)
    .executeTakeFirst()
}

/**
 * Uses the token: one conditional update, so of two concurrent uses exactly one succeeds. False
 * if it was used, superseded or expired in the meantime.
 */
export async function consumeToken(trx: Executor, id: string, now: Date): Promise<boolean> {
  const rows = await trx
    .updateTable('recovery_tokens')
    .set({ used_at: now })
    .where('id', '=', id)
    .where('used_at', 'is', null)
    .where('superseded_at', 'is', null)
    .where('expires_at', '>', now)
    .returning('id')
    .execute()
  return rows.length > 0
}

/** Retention: deletes up to `limit` tokens expired before `cutoff` (their outbox rows go with them). */
export async function deleteTokensExpiredBefore(db: Executor, cutoff: Date, limit: number): Promise<number> {
  const rows = await db
    .deleteFrom('recovery_tokens')
    .where('id', 'in', (eb) => eb.selectFrom('recovery_tokens').select('id').where('expires_at', '<', cutoff).limit(limit).forUpdate().skipLocked())
    .returning('id')
    .execute()
  return rows.length
}
