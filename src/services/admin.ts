// The admin endpoints (docs/api.md, "Admin endpoints"): what a support tool, as a machine client
// with `sessions:admin`, may do to a user. Every call is audited with the client as its actor,
// and every session ended here is a logout in the full sense (its tokens die on every instance).
import { canonicalUuid } from '../auth/claims.js'
import type { AuthEventKind } from '../db/types.js'
import { insertAuthEvent, type AuditFacts } from '../repositories/auth-events.js'
import { endSessions, listSessionsOfUser, type SessionSelection } from '../repositories/sessions.js'
import { findAdminUserByEmail, holdUser, setUserDisabled, type AdminUser } from '../repositories/users.js'
import type { Executor } from '../repositories/executor.js'
import { normalizeEmail } from './accounts.js'
import { auditFacts, type AuthContext, type ClientInfo } from './context.js'
import { SessionNotFoundError, UserNotFoundError } from './errors.js'

/** The machine client making the call, and where from. */
export interface AdminActor extends ClientInfo {
  readonly clientId: string
}

function adminFacts(ctx: AuthContext, kind: AuthEventKind, actor: AdminActor, detail?: Record<string, unknown>): AuditFacts {
  return { ...auditFacts(ctx, kind, actor, detail), actorClientId: actor.clientId }
}

async function record(ctx: AuthContext, db: Executor, facts: AuditFacts, userId: string | null): Promise<void> {
  const event = { ...facts, userId, sessionId: null }
  await insertAuthEvent(db, event)
  ctx.recorded(event)
}

/** GET /admin/users?email=: the user of an address (emails compare case-insensitively). */
export async function findUserForAdmin(ctx: AuthContext, actor: AdminActor, email: string): Promise<AdminUser> {
  const user = await findAdminUserByEmail(ctx.db, normalizeEmail(email))
  await record(ctx, ctx.db, adminFacts(ctx, 'admin_user_lookup', actor, { email: normalizeEmail(email), found: user !== undefined }), user?.id ?? null)
  if (!user) throw new UserNotFoundError()
  return user
}

/** GET /admin/users/:id/sessions: the user's live sessions, newest first. */
export async function listSessionsForAdmin(ctx: AuthContext, actor: AdminActor, userIdParam: string) {
  const userId = canonicalUuid(userIdParam)
  const result = await ctx.db.transaction().execute(async (trx) => {
    if (userId === undefined || !(await holdUser(trx, userId, 'key share'))) return undefined
    const sessions = await listSessionsOfUser(trx, userId, ctx.now())
    await record(ctx, trx, adminFacts(ctx, 'admin_sessions_listed', actor, { sessions: sessions.length }), userId)
    return sessions
  })
  if (!result) throw new UserNotFoundError()
  return result
}

/**
 * DELETE /admin/users/:id/sessions[/:sid]: ends every session of the user, or the one named (404
 * if it is not that user's), like a logout with `all_devices` or of that session.
 */
export async function endSessionsForAdmin(ctx: AuthContext, actor: AdminActor, userIdParam: string, sessionIdParam?: string): Promise<string[]> {
  const userId = canonicalUuid(userIdParam)
  const sessionId = sessionIdParam === undefined ? undefined : canonicalUuid(sessionIdParam)
  if (userId === undefined) throw new UserNotFoundError()
  if (sessionIdParam !== undefined && sessionId === undefined) throw new SessionNotFoundError()
  const scope = sessionId === undefined ? 'admin_all' : 'admin_one'
  const facts = adminFacts(ctx, 'logout', actor, { scope })
  const deleted = await ctx.db.transaction().execute(async (trx) => {
    if (!(await holdUser(trx, userId, 'key share'))) throw new UserNotFoundError()
    const selection: SessionSelection = sessionId === undefined ? { userId } : { userId, sessionId }
    return endSessions(trx, selection, facts)
  })
  ctx.sessionsEnded(deleted, { ...facts, userId, sessionId: sessionId ?? null })
  if (sessionId !== undefined && deleted.length === 0) throw new SessionNotFoundError()
  return deleted
}

/**
 * POST /admin/users/:id/disable: the user can neither log in nor refresh until enabled, and
 * every session ends now. The user row is held `for update` while the sessions are deleted, so
 * a login that is opening a session either commits first (and its session is deleted here) or
 * finds the user disabled (repositories/sessions.ts, INSERT_SESSION).
 */
export async function disableUser(ctx: AuthContext, actor: AdminActor, userIdParam: string): Promise<string[]> {
  return setDisabled(ctx, actor, userIdParam, true)
}

/** POST /admin/users/:id/enable: login and refresh work again (the ended sessions stay ended). */
export async function enableUser(ctx: AuthContext, actor: AdminActor, userIdParam: string): Promise<void> {
  await setDisabled(ctx, actor, userIdParam, false)
}

async function setDisabled(ctx: AuthContext, actor: AdminActor, userIdParam: string, disabled: boolean): Promise<string[]> {
  const userId = canonicalUuid(userIdParam)
  if (userId === undefined) throw new UserNotFoundError()
  const changed = adminFacts(ctx, disabled ? 'user_disabled' : 'user_enabled', actor)
  const loggedOut = adminFacts(ctx, 'logout', actor, { scope: 'user_disabled' })
  const deleted = await ctx.db.transaction().execute(async (trx) => {
    if (!(await holdUser(trx, userId, 'update'))) throw new UserNotFoundError()
    await setUserDisabled(trx, userId, disabled, changed.at)
    await insertAuthEvent(trx, { ...changed, userId, sessionId: null })
    return disabled ? endSessions(trx, { userId }, loggedOut) : []
  })
  ctx.recorded({ ...changed, userId, sessionId: null })
  ctx.sessionsEnded(deleted, { ...loggedOut, userId, sessionId: null })
  return deleted
}
