import { randomUUID } from 'node:crypto'
import { insertAuthEvent } from '../repositories/auth-events.js'
import { insertCredentialChange } from '../repositories/security-events.js'
import { endSessions, holdLiveSession } from '../repositories/sessions.js'
import {
  findPublicUserById,
  findUserByEmail,
  findUserById,
  insertUser,
  updatePasswordHash,
  type PublicUser
} from '../repositories/users.js'
import { auditFacts, type AuthContext, type Caller, type ClientInfo } from './context.js'
import { isUniqueViolation } from '../db/errors.js'
import { EmailNotVerifiedError, EmailTakenError, InvalidCredentialsError, SessionEndedError, WrongPasswordError } from './errors.js'
import { assertPasswordAllowed } from './password-policy.js'
import { startSession, type TokenPair } from './sessions.js'

/** Emails are case-insensitive: stored and looked up lower-cased (docs/decisions.md, "Accounts and passwords"). */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase()
}

export interface Credentials {
  readonly email: string
  readonly password: string
}

export interface NewAccount extends Credentials {
  readonly displayName?: string | null
}

export interface PasswordChange {
  readonly currentPassword: string
  readonly newPassword: string
}

export async function register(ctx: AuthContext, account: NewAccount, client: ClientInfo): Promise<TokenPair> {
  assertPasswordAllowed(account.password, account.email, account.displayName) // before any argon2 work
  const passwordHash = await ctx.passwords.hash(account.password)
  try {
    return await ctx.db.transaction().execute(async (trx) => {
      const now = ctx.now()
      const user = await insertUser(trx, {
        id: randomUUID(),
        email: normalizeEmail(account.email),
        password_hash: passwordHash,
        display_name: account.displayName ?? null,
        created_at: now,
        updated_at: now
      })
      return startSession(ctx, trx, user, client, 'register')
    })
  } catch (err) {
    if (isUniqueViolation(err)) throw new EmailTakenError()
    throw err
  }
}

/** Unknown email and wrong password get the same error after the same argon2id work. */
export async function login(ctx: AuthContext, credentials: Credentials, client: ClientInfo): Promise<TokenPair> {
  const email = normalizeEmail(credentials.email)
  const user = await findUserByEmail(ctx.db, email)
  const valid = user ? await ctx.passwords.verify(user.password_hash, credentials.password) : await ctx.passwords.burn(credentials.password)
  // A disabled user is refused after the same work, with the same answer (no enumeration).
  if (!user || !valid || user.disabled) {
    // Who tried which account from where (credential stuffing shows up here); never the password.
    const detail = user?.disabled && valid ? { email, reason: 'disabled' } : { email }
    const event = { ...auditFacts(ctx, 'login_failed', client, detail), userId: user?.id ?? null, sessionId: null }
    await insertAuthEvent(ctx.db, event)
    ctx.recorded(event)
    throw new InvalidCredentialsError()
  }
  // Only after the password check: without the password nobody learns whether an address is verified.
  if (ctx.settings.requireVerifiedEmail && !user.email_verified) {
    const event = { ...auditFacts(ctx, 'login_failed', client, { email, reason: 'email_not_verified' }), userId: user.id, sessionId: null }
    await insertAuthEvent(ctx.db, event)
    ctx.recorded(event)
    throw new EmailNotVerifiedError()
  }
  const { id, display_name, email_verified, created_at } = user
  return startSession(ctx, ctx.db, { id, email: user.email, display_name, email_verified, created_at }, client, 'login')
}

export async function getProfile(ctx: AuthContext, caller: Caller): Promise<PublicUser> {
  const user = await findPublicUserById(ctx.db, caller.userId)
  if (!user) throw new SessionEndedError() // the account is gone with its sessions
  return user
}

/** POST /password: every other session of the user is deleted; the caller's stays. */
export async function changePassword(
  ctx: AuthContext,
  caller: Caller,
  change: PasswordChange,
  client: ClientInfo
): Promise<string[]> {
  const user = await findUserById(ctx.db, caller.userId)
  if (!user) throw new SessionEndedError()
  assertPasswordAllowed(change.newPassword, user.email, user.display_name) // before any argon2 work
  if (!(await ctx.passwords.verify(user.password_hash, change.currentPassword))) throw new WrongPasswordError()
  const passwordHash = await ctx.passwords.hash(change.newPassword)
  const changed = { ...auditFacts(ctx, 'password_changed', client), userId: user.id, sessionId: caller.sessionId }
  const loggedOut = auditFacts(ctx, 'logout', client, { scope: 'password_change', by_session: caller.sessionId })
  const deleted = await ctx.db.transaction().execute(async (trx) => {
    // The user row first, then the session, the order a disable takes them in (services/admin.ts):
    // no deadlock between the two. The caller's session may have been logged out while the
    // hashes were computed: the change commits only if the session still exists, and a logout
    // racing it waits for the commit.
    await updatePasswordHash(trx, user.id, passwordHash, changed.at)
    if (!(await holdLiveSession(trx, caller.sessionId, user.id, changed.at))) throw new SessionEndedError()
    await insertAuthEvent(trx, changed)
    await insertCredentialChange(trx, user.id, changed.at, { initiatingEntity: 'user', reason: 'password change' })
    return endSessions(trx, { userId: user.id, exceptSessionId: caller.sessionId }, loggedOut)
  })
  ctx.recorded(changed)
  ctx.sessionsEnded(deleted, { ...loggedOut, userId: user.id, sessionId: caller.sessionId })
  return deleted
}
