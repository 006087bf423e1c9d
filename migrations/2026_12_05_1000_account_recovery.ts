import { sql, type Kysely } from 'kysely'

// Account recovery (docs/recovery.md): password reset and email verification by mail.
// - users.email_verified: a constant default, so adding it rewrites no rows.
// - recovery_tokens: one row per token, kept as its SHA-256 only; at most one live token (not
//   used, not superseded) per user and kind, which the partial unique index enforces.
// - mail_outbox: the mails to send, written in the transaction that makes the token (or, for a
//   forgotten password, the request itself, resolved to a token later: the answer to the request
//   is the same whether the account exists); one row per token, sent by one sender at a time.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('email_verified', 'boolean', (col) => col.notNull().defaultTo(false)).execute()

  await db.schema
    .createTable('recovery_tokens')
    .addColumn('id', 'uuid', (col) => col.primaryKey())
    .addColumn('user_id', 'uuid', (col) => col.notNull().references('users.id').onDelete('cascade'))
    .addColumn('kind', 'text', (col) => col.notNull().check(sql`kind in ('password_reset', 'email_verification')`))
    .addColumn('token_hash', 'text', (col) => col.notNull().unique())
    .addColumn('email', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('superseded_at', 'timestamptz')
    .execute()
  await sql`create unique index recovery_tokens_live_idx on recovery_tokens (user_id, kind) where used_at is null and superseded_at is null`.execute(db)
  await db.schema.createIndex('recovery_tokens_expires_idx').on('recovery_tokens').column('expires_at').execute()

  await db.schema
    .createTable('mail_outbox')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('kind', 'text', (col) => col.notNull().check(sql`kind in ('password_reset', 'email_verification')`))
    .addColumn('state', 'text', (col) => col.notNull().check(sql`state in ('requested', 'pending', 'sent', 'failed', 'cancelled')`))
    .addColumn('email', 'text', (col) => col.notNull())
    .addColumn('token_id', 'uuid', (col) => col.unique().references('recovery_tokens.id').onDelete('cascade'))
    .addColumn('sealed_token', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('next_attempt_at', 'timestamptz', (col) => col.notNull())
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('sent_at', 'timestamptz')
    .execute()
  // What the sender looks for, kept small: requests live for a moment, pending mails until sent.
  await sql`create index mail_outbox_requested_idx on mail_outbox (id) where state = 'requested'`.execute(db)
  await sql`create index mail_outbox_pending_idx on mail_outbox (next_attempt_at) where state = 'pending'`.execute(db)
  await sql`comment on column mail_outbox.sealed_token is 'The token, AES-256-GCM sealed with a key derived from the signing material; erased once sent, failed or cancelled'`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('mail_outbox').execute()
  await db.schema.dropTable('recovery_tokens').execute()
  await db.schema.alterTable('users').dropColumn('email_verified').execute()
}
