// Account recovery (docs/recovery.md): POST /password/forgot, /password/reset,
// /email/verification and /email/verify. Tokens are 256 random bits, kept as SHA-256 only,
// single-use, expiring and superseded by a newer request of the same kind; each mail is an
// outbox row written in the transaction that makes its token (src/mail/outbox.ts sends it).
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { RecoverySettings } from '../config.js'
import type { RecoveryTokenKind } from '../db/types.js'
import { insertAuthEvent, type AuditEvent } from '../repositories/auth-events.js'
import type { Executor } from '../repositories/executor.js'
import { attachToken, cancelMailsOfTokens, deleteMailRow, insertMailRequest, insertPendingMail, takeRequest } from '../repositories/mail-outbox.js'
import {
  consumeToken,
  findTokenByHash,
  insertRecoveryToken,
  lockUserForRecovery,
  supersedeLiveTokens,
  type RecoveryUser
} from '../repositories/recovery-tokens.js'
import { insertCredentialChange } from '../repositories/security-events.js'
import { endSessions } from '../repositories/sessions.js'
import { markEmailVerified, updatePasswordHash } from '../repositories/users.js'
import type { TokenSealer } from '../mail/seal.js'
import { normalizeEmail } from './accounts.js'
import { auditFacts, type AuthContext, type Caller, type ClientInfo } from './context.js'
import { EmailAlreadyVerifiedError, InvalidRecoveryTokenError, SessionEndedError } from './errors.js'
import { assertPasswordAllowed } from './password-policy.js'

/** What recovery needs besides the AuthContext. */
export interface RecoveryContext {
  readonly settings: RecoverySettings
  readonly sealer: TokenSealer
  /** Tells this instance's sender that a mail (or a request) is waiting. */
  readonly wake: () => void
}

/** The SHA-256 a token is kept as (base64url). */
export function hashRecoveryToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url')
}

function ttlOf(settings: RecoverySettings, kind: RecoveryTokenKind): number {
  return kind === 'password_reset' ? settings.passwordResetTtl : settings.emailVerificationTtl
}

/**
 * Inside the transaction that holds the user (lockUserForRecovery): supersedes the user's live
 * token of `kind` (its unsent mail cancelled), makes a new one and returns it sealed for the outbox.
 */
async function issueToken(trx: Executor, rc: RecoveryContext, user: RecoveryUser, kind: RecoveryTokenKind, now: Date) {
  const superseded = await supersedeLiveTokens(trx, user.id, kind, now)
  await cancelMailsOfTokens(trx, superseded)
  const token = randomBytes(32).toString('base64url')
  const id = randomUUID()
  await insertRecoveryToken(trx, {
    id,
    user_id: user.id,
    kind,
    token_hash: hashRecoveryToken(token),
    email: user.email,
    created_at: now,
    expires_at: new Date(now.getTime() + ttlOf(rc.settings, kind) * 1000)
  })
  return { tokenId: id, sealedToken: rc.sealer.seal(token) }
}

/**
 * POST /password/forgot: the same single insert whether or not the address has an account, so
 * the answer (202) and its time say nothing about it. The sender resolves the request later
 * (resolveNextRequest), woken by the route once the answer has left.
 */
export async function requestPasswordReset(ctx: AuthContext, email: string): Promise<void> {
  await insertMailRequest(ctx.db, { kind: 'password_reset', email: normalizeEmail(email), now: ctx.now() })
}

/**
 * The sender's first step: the oldest waiting request becomes a token and a pending mail in one
 * transaction, or is deleted if the address has no account (or a disabled one). False when no
 * request is waiting.
 */
export async function resolveNextRequest(ctx: AuthContext, rc: RecoveryContext): Promise<boolean> {
  const recorded: AuditEvent[] = []
  const found = await ctx.db.transaction().execute(async (trx) => {
    const request = await takeRequest(trx)
    if (!request) return false
    const now = ctx.now()
    const user = await lockUserForRecovery(trx, { email: request.email })
    if (!user || user.disabled) {
      await deleteMailRow(trx, request.id)
      return true
    }
    const { tokenId, sealedToken } = await issueToken(trx, rc, user, request.kind, now)
    await attachToken(trx, request.id, tokenId, sealedToken, now)
    const event = { ...auditFacts(ctx, 'password_reset_requested', {}), userId: user.id, sessionId: null }
    await insertAuthEvent(trx, event)
    recorded.push(event)
    return true
  })
  for (const event of recorded) ctx.recorded(event)
  return found
}

/** POST /email/verification: a new verification mail for the caller's address (409 if verified). */
export async function requestEmailVerification(ctx: AuthContext, rc: RecoveryContext, caller: Caller, client: ClientInfo): Promise<void> {
  const event = await ctx.db.transaction().execute(async (trx) => {
    const user = await lockUserForRecovery(trx, { id: caller.userId })
    if (!user) throw new SessionEndedError()
    if (user.email_verified) throw new EmailAlreadyVerifiedError()
    const now = ctx.now()
    const { tokenId, sealedToken } = await issueToken(trx, rc, user, 'email_verification', now)
    await insertPendingMail(trx, { kind: 'email_verification', email: user.email, tokenId, sealedToken, now })
    const requested = { ...auditFacts(ctx, 'email_verification_requested', client), userId: user.id, sessionId: caller.sessionId }
    await insertAuthEvent(trx, requested)
    return requested
  })
  ctx.recorded(event)
  rc.wake()
}

/** The live token of `kind` with this value, else InvalidRecoveryTokenError (unknown, used, superseded, expired). */
async function liveToken(ctx: AuthContext, token: string, kind: RecoveryTokenKind) {
  const found = await findTokenByHash(ctx.db, hashRecoveryToken(token))
  if (!found || found.kind !== kind || found.used_at || found.superseded_at || found.expires_at <= ctx.now() || found.disabled) {
    throw new InvalidRecoveryTokenError()
  }
  return found
}

/**
 * POST /password/reset: the new password is checked as at registration (before any argon2
 * work, and before the token is used, so a weak one can be corrected with the same link); then,
 * in one transaction, the token is used, the password replaced, the address counts as verified
 * (the mail reached it), and every session of the user ends with its audit and session-revoked
 * events, plus one credential-change, as a password change does (services/accounts.ts).
 */
export async function resetPassword(ctx: AuthContext, token: string, newPassword: string, client: ClientInfo): Promise<string[]> {
  const found = await liveToken(ctx, token, 'password_reset')
  assertPasswordAllowed(newPassword, found.user_email, found.display_name)
  const passwordHash = await ctx.passwords.hash(newPassword)
  const reset = { ...auditFacts(ctx, 'password_reset', client), userId: found.user_id, sessionId: null }
  const loggedOut = auditFacts(ctx, 'logout', client, { scope: 'password_reset' })
  const deleted = await ctx.db.transaction().execute(async (trx) => {
    // The user row first, then the token: the order a forgot request resolves in (no deadlock).
    const user = await lockUserForRecovery(trx, { id: found.user_id })
    if (!user || user.disabled || user.email !== found.email) throw new InvalidRecoveryTokenError()
    if (!(await consumeToken(trx, found.id, reset.at))) throw new InvalidRecoveryTokenError()
    await updatePasswordHash(trx, user.id, passwordHash, reset.at, { verifyEmail: true })
    await insertAuthEvent(trx, reset)
    await insertCredentialChange(trx, user.id, reset.at, { initiatingEntity: 'user', reason: 'password reset' })
    return endSessions(trx, { userId: user.id }, loggedOut)
  })
  ctx.recorded(reset)
  ctx.sessionsEnded(deleted, { ...loggedOut, userId: found.user_id, sessionId: null })
  return deleted
}

/** POST /email/verify: the token's address, if it is still the account's, becomes verified. */
export async function verifyEmail(ctx: AuthContext, token: string, client: ClientInfo): Promise<void> {
  const found = await liveToken(ctx, token, 'email_verification')
  const event = { ...auditFacts(ctx, 'email_verified', client), userId: found.user_id, sessionId: null }
  await ctx.db.transaction().execute(async (trx) => {
    const user = await lockUserForRecovery(trx, { id: found.user_id })
    if (!user || user.disabled || user.email !== found.email) throw new InvalidRecoveryTokenError()
    if (!(await consumeToken(trx, found.id, event.at))) throw new InvalidRecoveryTokenError()
    await markEmailVerified(trx, user.id, found.email, event.at)
    await insertAuthEvent(trx, event)
  })
  ctx.recorded(event)
}
