import type { ColumnType, Insertable, Selectable } from 'kysely'

// Hand-written to match migrations/. Timestamps are read as Date and written as Date.
type Timestamp = ColumnType<Date, Date | undefined, Date>

export interface UsersTable {
  id: string
  /** Stored lower-cased: emails are case-insensitive and unique. */
  email: string
  password_hash: string
  display_name: string | null
  /** Set by an administrator: no login and no refresh until enabled again. */
  disabled: ColumnType<boolean, boolean | undefined, boolean>
  /** Set when the owner proved the address (POST /email/verify, or a password reset by mail). */
  email_verified: ColumnType<boolean, boolean | undefined, boolean>
  created_at: Timestamp
  updated_at: Timestamp
}

export interface UserSessionsTable {
  id: string
  user_id: string
  /** SHA-256 (hex) of the current refresh token's jti; never the jti itself. */
  refresh_jti_hash: string
  /** SHA-256 of the jti that the last rotation replaced, for the reuse grace window. */
  previous_jti_hash: string | null
  /** When the current refresh token was issued (login or last rotation); its `iat`. */
  rotated_at: Timestamp
  created_at: Timestamp
  last_used_at: Timestamp
  expires_at: Date
  user_agent: string | null
  ip: string | null
}

/** What the audit trail records (docs/operations.md, "Audit trail"). */
export type AuthEventKind =
  | 'register'
  | 'login'
  | 'login_failed'
  | 'logout'
  | 'refresh_reuse'
  | 'revoke'
  | 'session_deleted'
  | 'password_changed'
  | 'client_token_issued'
  | 'client_auth_failed'
  | 'admin_user_lookup'
  | 'admin_sessions_listed'
  | 'user_disabled'
  | 'user_enabled'
  | 'password_reset_requested'
  | 'password_reset'
  | 'email_verification_requested'
  | 'email_verified'

export interface AuthEventsTable {
  id: ColumnType<number, never, never>
  occurred_at: Timestamp
  kind: AuthEventKind
  user_id: string | null
  session_id: string | null
  ip: string | null
  user_agent: string | null
  /** Small JSON facts, e.g. `{ "scope": "all_devices" }`; never a token or a password. */
  detail: ColumnType<Record<string, unknown> | null, string | null, never>
  /** The machine client that acted (admin endpoints); null: the user or the service itself. */
  actor_client_id: ColumnType<string | null, string | null | undefined, never>
}

/** The Shared Signals event log (migrations/…_security_events.ts). */
export interface SecurityEventsTable {
  id: ColumnType<string, never, never>
  /** The writing transaction (xid8, as text): how readers know nothing can commit behind them. */
  txid: ColumnType<string, never, never>
  occurred_at: Date
  event_type: 'session-revoked' | 'credential-change'
  user_id: string
  session_id: string | null
  initiating_entity: 'user' | 'admin' | 'policy' | 'system'
  reason_admin: string
  detail: ColumnType<Record<string, unknown> | null, string | null, never>
}

export type SsfDeliveryMethod = 'urn:ietf:rfc:8936' | 'urn:ietf:rfc:8935'
export type SsfStreamStatus = 'enabled' | 'paused' | 'disabled'

/** A Shared Signals stream (migrations/…_ssf_streams.ts, docs/ssf.md). */
export interface SsfStreamsTable {
  id: string
  client_id: string
  aud: string
  delivery_method: SsfDeliveryMethod
  /** Push only: the receiver's URL. */
  endpoint_url: string | null
  events_requested: string[]
  description: string | null
  status: ColumnType<SsfStreamStatus, SsfStreamStatus | undefined, SsfStreamStatus>
  status_reason: string | null
  /** The stream's position in (txid, id) order; xid8 as text. */
  cursor_txid: string
  cursor_id: ColumnType<string, string, string>
  created_at: Date
  updated_at: Date
  last_polled_at: Date | null
  lease_owner: string | null
  lease_until: Date | null
  attempts: ColumnType<number, number | undefined, number>
  next_attempt_at: Date | null
  last_error: string | null
  last_delivered_at: Date | null
}

export interface SsfStreamAcksTable {
  stream_id: string
  event_id: string
}

export interface SsfVerificationsTable {
  id: ColumnType<string, never, never>
  stream_id: string
  state: string | null
  requested_at: Date
}

/** A rate-limit window shared by every instance (migrations/…_rate_limit_counts.ts). */
export interface RateLimitCountsTable {
  key: string
  count: number
  expires_at: Date
}

export type RecoveryTokenKind = 'password_reset' | 'email_verification'

/** A password-reset or email-verification token, as its SHA-256 only (migrations/…_account_recovery.ts). */
export interface RecoveryTokensTable {
  id: string
  user_id: string
  kind: RecoveryTokenKind
  /** SHA-256 (base64url) of the token; the token itself is never stored. */
  token_hash: string
  /** The address it was mailed to: a verification token proves only that one. */
  email: string
  created_at: Date
  expires_at: Date
  used_at: Date | null
  /** A newer request of the same kind replaced it. */
  superseded_at: Date | null
}

export type MailState = 'requested' | 'pending' | 'sent' | 'failed' | 'cancelled'

/** A mail to send (src/mail/outbox.ts). */
export interface MailOutboxTable {
  id: ColumnType<string, never, never>
  kind: RecoveryTokenKind
  state: MailState
  email: string
  token_id: string | null
  /** The token sealed for the sender (src/mail/seal.ts); null once sent, failed or cancelled. */
  sealed_token: string | null
  created_at: Date
  next_attempt_at: Date
  attempts: ColumnType<number, number | undefined, number>
  last_error: string | null
  sent_at: Date | null
}

export interface Database {
  users: UsersTable
  user_sessions: UserSessionsTable
  auth_events: AuthEventsTable
  security_events: SecurityEventsTable
  ssf_streams: SsfStreamsTable
  ssf_stream_acks: SsfStreamAcksTable
  ssf_verifications: SsfVerificationsTable
  rate_limit_counts: RateLimitCountsTable
  recovery_tokens: RecoveryTokensTable
  mail_outbox: MailOutboxTable
}

export type UserRow = Selectable<UsersTable>
export type NewUserRow = Insertable<UsersTable>
export type SessionRow = Selectable<UserSessionsTable>
export type NewSessionRow = Insertable<UserSessionsTable>
export type AuthEventRow = Selectable<AuthEventsTable>
