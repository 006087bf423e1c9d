import { sql, type Kysely } from 'kysely'

// The audit trail: who logged in, failed to, logged out (which kind), had a refresh token
// stolen, changed a password or deleted a session, and when. Append-only: no foreign keys, so
// deleting a session or a user never deletes its history; updates are refused; old rows are
// removed only by the retention clean-up (AUDIT_RETENTION). Never a token or a password.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('auth_events')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('occurred_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('kind', 'text', (col) => col.notNull())
    .addColumn('user_id', 'uuid')
    .addColumn('session_id', 'uuid')
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('detail', 'jsonb')
    .execute()
  await db.schema.createIndex('auth_events_user_id_idx').on('auth_events').columns(['user_id', 'occurred_at']).execute()
  await db.schema.createIndex('auth_events_session_id_idx').on('auth_events').column('session_id').execute()
  await db.schema.createIndex('auth_events_occurred_at_idx').on('auth_events').column('occurred_at').execute()

  await sql`
    create function auth_events_refuse_update() returns trigger language plpgsql as $$
    begin
      raise exception 'auth_events is append-only';
    end
    $$
  `.execute(db)
  await sql`
    create trigger auth_events_append_only
    before update on auth_events
    for each row execute function auth_events_refuse_update()
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('auth_events').execute()
  await sql`drop function if exists auth_events_refuse_update()`.execute(db)
}
