import type { Kysely } from 'kysely'
import type { AuthEventKind, Database } from '../db/types.js'
import type { AuditEvent, AuditFacts } from '../repositories/auth-events.js'
import type { TokenIssuer } from '../auth/token-issuer.js'
import type { TokenVerifier } from '../auth/token-verifier.js'
import type { PasswordHasher } from './passwords.js'

/** The session rules the services apply. */
export interface SessionSettings {
  /** Seconds a session lives, counted from login (REFRESH_TOKEN_TTL): rotation never extends it. */
  readonly refreshTtl: number
  /** Seconds in which a just-rotated refresh token is answered idempotently (0: every reuse is theft). */
  readonly reuseGrace: number
  /** REQUIRE_VERIFIED_EMAIL: the right password of an unverified account answers 403 AUTH_EMAIL_NOT_VERIFIED. */
  readonly requireVerifiedEmail?: boolean
}

/** Everything a service function needs, passed in explicitly (no framework, injectable clock). */
export interface AuthContext {
  readonly db: Kysely<Database>
  readonly tokens: TokenIssuer
  readonly verifier: TokenVerifier
  readonly settings: SessionSettings
  /** argon2id, bounded: every password hash and check goes through it. */
  readonly passwords: PasswordHasher
  readonly now: () => Date
  /**
   * Called after sessions were ended (their audit rows are stored by the same statement): this
   * instance forgets them at once, and the event is logged and counted.
   */
  readonly sessionsEnded: (sessionIds: readonly string[], event: AuditEvent) => void
  /** Called after any other audit event was stored: logged and counted. */
  readonly recorded: (event: AuditEvent) => void
}

/** Who is calling, as established by a verified access token of a live session. */
export interface Caller {
  readonly userId: string
  readonly sessionId: string
}

/** Where a session was created from (docs/api.md, "Session lifecycle"). */
export interface ClientInfo {
  readonly userAgent?: string
  readonly ip?: string
}

const MAX_USER_AGENT = 512

/** The audit facts of an event happening now, from this client. */
export function auditFacts(ctx: AuthContext, kind: AuthEventKind, client: ClientInfo, detail?: Record<string, unknown>): AuditFacts {
  return { kind, at: ctx.now(), ip: client.ip, userAgent: client.userAgent?.slice(0, MAX_USER_AGENT), detail }
}
