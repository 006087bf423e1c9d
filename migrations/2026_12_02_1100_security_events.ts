import { sql, type Kysely } from 'kysely'

// The Shared Signals event log (docs/ssf.md): one row per event whatever the number of streams
// (each stream keeps a cursor into it), written by the same statement or transaction that ends
// the session, so no session ends without its event and no event exists for a session that did
// not end.
//
// `txid` is the writing transaction: identity values are handed out before commit, so a reader
// that moved its cursor past id N could later see an id below N commit. A reader only takes rows
// whose transaction precedes every transaction still running (`txid < pg_snapshot_xmin(...)`):
// those are all committed or rolled back, so nothing can appear behind the cursor any more.
// (Since …_ssf_event_horizon.ts only this database's running transactions count.)
// Every insert wakes the long polls of every instance through `auth_security_event`.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('security_events')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('txid', sql`xid8`, (col) => col.notNull().defaultTo(sql`pg_current_xact_id()`))
    .addColumn('occurred_at', 'timestamptz', (col) => col.notNull())
    .addColumn('event_type', 'text', (col) => col.notNull())
    .addColumn('user_id', 'uuid', (col) => col.notNull())
    .addColumn('session_id', 'uuid')
    .addColumn('initiating_entity', 'text', (col) => col.notNull())
    .addColumn('reason_admin', 'text', (col) => col.notNull())
    .addColumn('detail', 'jsonb')
    .execute()
  await db.schema.createIndex('security_events_occurred_at_idx').on('security_events').column('occurred_at').execute()
  await sql`
    create function auth_notify_security_event() returns trigger language plpgsql as $$
    begin
      perform pg_notify('auth_security_event', '');
      return null;
    end
    $$
  `.execute(db)
  await sql`
    create trigger security_events_notify
    after insert on security_events
    for each statement execute function auth_notify_security_event()
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('security_events').execute()
  await sql`drop function if exists auth_notify_security_event()`.execute(db)
}
