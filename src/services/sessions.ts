import { randomUUID } from 'node:crypto'
import { canonicalUuid, TokenRejectedError, type RefreshTokenClaims } from '../auth/claims.js'
import type { PublicUser } from '../repositories/users.js'
import {
  endSessions,
  insertSession,
  listSessionsOfUser,
  rotateRefreshJti,
  touchRecentlyRotated,
  type RotatedSession
} from '../repositories/sessions.js'
import type { Executor } from '../repositories/executor.js'
import { auditFacts, type AuthContext, type Caller, type ClientInfo } from './context.js'
import {
  ForeignSessionError,
  InvalidCredentialsError,
  InvalidLogoutRequestError,
  InvalidRefreshTokenError,
  RefreshTokenReuseError,
  SessionEndedError,
  SessionNotFoundError
} from './errors.js'

export interface TokenPair {
  user: PublicUser
  access_token: string
  refresh_token: string
  token_type: 'Bearer'
  expires_in: number
}

/**
 * Opens a new session (one per login or registration), recording `kind` in the audit trail, and
 * returns its first token pair.
 */
export async function startSession(
  ctx: AuthContext,
  db: Executor,
  user: PublicUser,
  client: ClientInfo,
  kind: 'login' | 'register'
): Promise<TokenPair> {
  const facts = auditFacts(ctx, kind, client)
  const now = facts.at
  const sessionId = randomUUID()
  const jti = ctx.tokens.newRefreshJti()
  // REFRESH_TOKEN_TTL counts from login; rotation never extends it.
  const expiresAt = new Date(now.getTime() + ctx.settings.refreshTtl * 1000)
  const opened = await insertSession(db, {
    id: sessionId,
    user_id: user.id,
    refresh_jti_hash: ctx.tokens.hashJti(jti),
    previous_jti_hash: null,
    rotated_at: now,
    created_at: now,
    last_used_at: now,
    expires_at: expiresAt,
    user_agent: facts.userAgent ?? null,
    ip: client.ip ?? null
  }, facts)
  // The user was disabled while the password was checked: answered like a wrong password.
  if (!opened) throw new InvalidCredentialsError()
  ctx.recorded({ ...facts, userId: user.id, sessionId })
  return tokenPair(ctx, user, { id: sessionId, user_id: user.id, rotated_at: now, expires_at: expiresAt }, jti, now)
}

function tokenPair(ctx: AuthContext, user: PublicUser, session: RotatedSession, refreshJti: string, now: Date): TokenPair {
  const access = ctx.tokens.issueAccessToken(user.id, session.id, session.expires_at, now)
  return {
    user,
    access_token: access.token,
    refresh_token: ctx.tokens.issueRefreshToken(user.id, session.id, refreshJti, session.rotated_at, session.expires_at),
    token_type: 'Bearer',
    expires_in: access.expiresIn
  }
}

/** The claims of a genuine refresh token; InvalidRefreshTokenError for anything else. */
export function verifyRefreshToken(ctx: AuthContext, token: string): RefreshTokenClaims {
  try {
    return ctx.verifier.verify(token, 'refresh')
  } catch (err) {
    if (err instanceof TokenRejectedError) throw new InvalidRefreshTokenError(undefined, { cause: err })
    throw err
  }
}

/**
 * POST /refresh (docs/api.md, "POST /refresh"), for a refresh token already verified. Conditional
 * statements decide, never a read-then-write: rotate if the token is current; else replay the
 * rotation if the token is the one just rotated away within the grace window; else it is reuse
 * of an old token, treated as theft (RFC 9700 §4.14.2): the whole session is deleted.
 */
export async function refreshSession(ctx: AuthContext, claims: RefreshTokenClaims, client: ClientInfo): Promise<TokenPair> {
  const now = ctx.now()
  const presentedHash = ctx.tokens.hashJti(claims.jti)
  const nextJti = ctx.tokens.nextRefreshJti(claims.jti)
  const nextHash = ctx.tokens.hashJti(nextJti)
  const target = { sessionId: claims.sid, userId: claims.sub, now }

  let session = await rotateRefreshJti(ctx.db, { ...target, currentHash: presentedHash, nextHash })
  if (!session && ctx.settings.reuseGrace > 0) {
    const rotatedAfter = new Date(now.getTime() - ctx.settings.reuseGrace * 1000)
    session = await touchRecentlyRotated(ctx.db, { ...target, presentedHash, currentHash: nextHash, rotatedAfter })
  }
  if (!session) {
    const facts = auditFacts(ctx, 'refresh_reuse', client)
    const deleted = await endSessions(ctx.db, { userId: claims.sub, sessionId: claims.sid }, facts)
    if (deleted.length === 0) throw new InvalidRefreshTokenError() // session already gone
    ctx.sessionsEnded(deleted, { ...facts, userId: claims.sub, sessionId: claims.sid })
    throw new RefreshTokenReuseError()
  }

  const user = { id: session.user_id, email: session.email, display_name: session.display_name, email_verified: session.email_verified, created_at: session.user_created_at }
  return tokenPair(ctx, user, session, nextJti, now)
}

export type LogoutKind = 'current' | 'refresh_token' | 'all_devices' | 'other_devices'

export interface LogoutResult {
  kind: LogoutKind
  deletedSessionIds: string[]
}

/** What to log out; nothing set means the caller's own session. */
export interface LogoutTarget {
  /** The session this refresh token belongs to. */
  readonly refreshToken?: string
  /** Every session of the user. */
  readonly allDevices?: boolean
  /** With allDevices: all but the caller's own session. */
  readonly keepCurrent?: boolean
}

/** docs/api.md, "POST /logout": the combinations the request schema alone cannot express. */
function logoutKind(target: LogoutTarget): LogoutKind {
  const allDevices = target.allDevices === true
  if (target.keepCurrent !== undefined && !allDevices) {
    throw new InvalidLogoutRequestError('keep_current requires all_devices: true')
  }
  if (target.refreshToken !== undefined && allDevices) {
    throw new InvalidLogoutRequestError('refresh_token cannot be combined with all_devices: true')
  }
  if (target.refreshToken !== undefined) return 'refresh_token'
  if (allDevices) return target.keepCurrent === true ? 'other_devices' : 'all_devices'
  return 'current'
}

/**
 * POST /logout (docs/api.md, "POST /logout"). Sessions are deleted by id, so every token of a
 * deleted session dies with it, and a logout of a session already gone is a 204.
 */
export async function logout(ctx: AuthContext, caller: Caller, target: LogoutTarget, client: ClientInfo): Promise<LogoutResult> {
  const kind = logoutKind(target)
  const facts = auditFacts(ctx, 'logout', client, { scope: kind, by_session: caller.sessionId })
  let selection
  switch (kind) {
    case 'refresh_token': {
      const claims = verifyRefreshToken(ctx, target.refreshToken!)
      if (claims.sub !== caller.userId) throw new ForeignSessionError()
      // By the session the token names, not by the token's jti: an older (rotated) refresh
      // token of the session ends it too, like its current one.
      selection = { userId: caller.userId, sessionId: claims.sid }
      break
    }
    case 'all_devices':
      selection = { userId: caller.userId }
      break
    case 'other_devices':
      selection = { userId: caller.userId, exceptSessionId: caller.sessionId }
      break
    case 'current':
      selection = { userId: caller.userId, sessionId: caller.sessionId }
      break
  }
  const deleted = await endSessions(ctx.db, selection, facts)
  // For the current session the route skipped the liveness check (routes/logout.ts): the DELETE
  // is the check. Nothing deleted means the session was already gone: the token is revoked.
  if (kind === 'current' && deleted.length === 0) throw new SessionEndedError()
  ctx.sessionsEnded(deleted, { ...facts, userId: caller.userId, sessionId: caller.sessionId })
  return { kind, deletedSessionIds: deleted }
}

/** RFC 7009: revokes the session of a genuine refresh token; anything else is quietly ignored. */
export async function revokeToken(ctx: AuthContext, token: string, client: ClientInfo): Promise<string[]> {
  let claims
  try {
    claims = ctx.verifier.verify(token, 'refresh')
  } catch (err) {
    if (err instanceof TokenRejectedError) return [] // RFC 7009 §2.2: an invalid token is not an error
    throw err
  }
  return revokeSession(ctx, claims, client)
}

/** revokeToken for a token already verified (undefined: it was not a genuine refresh token). */
export async function revokeSession(ctx: AuthContext, claims: RefreshTokenClaims | undefined, client: ClientInfo): Promise<string[]> {
  if (!claims) return []
  const facts = auditFacts(ctx, 'revoke', client)
  const deleted = await endSessions(ctx.db, { userId: claims.sub, sessionId: claims.sid }, facts)
  ctx.sessionsEnded(deleted, { ...facts, userId: claims.sub, sessionId: claims.sid })
  return deleted
}

export async function listSessions(ctx: AuthContext, caller: Caller) {
  const sessions = await listSessionsOfUser(ctx.db, caller.userId, ctx.now())
  return sessions.map((session) => ({ ...session, current: session.id === caller.sessionId }))
}

/** DELETE /sessions/:id: only the caller's own sessions; another user's is indistinguishable from none. */
export async function deleteSessionById(ctx: AuthContext, caller: Caller, sessionId: string, client: ClientInfo): Promise<void> {
  const id = canonicalUuid(sessionId)
  if (id === undefined) throw new SessionNotFoundError() // no such session can exist
  const facts = auditFacts(ctx, 'session_deleted', client, { by_session: caller.sessionId })
  const deleted = await endSessions(ctx.db, { userId: caller.userId, sessionId: id }, facts)
  if (deleted.length === 0) throw new SessionNotFoundError()
  ctx.sessionsEnded(deleted, { ...facts, userId: caller.userId, sessionId: caller.sessionId })
}
