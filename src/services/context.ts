import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import type { TokenService, TokenSettings } from './tokens.js'

/** Everything a service function needs, passed in explicitly (no framework, injectable clock). */
export interface AuthContext {
  readonly db: Kysely<Database>
  readonly tokens: TokenService
  readonly settings: TokenSettings
  readonly now: () => Date
  /** Called after sessions were deleted, so this instance forgets them at once. */
  readonly sessionsRevoked: (sessionIds: readonly string[]) => void
}

/** Who is calling, as established by a verified access token of a live session. */
export interface Caller {
  readonly userId: string
  readonly sessionId: string
}

/** Where a session was created from (contract: "with the User-Agent and client IP"). */
export interface ClientInfo {
  readonly userAgent?: string
  readonly ip?: string
}
