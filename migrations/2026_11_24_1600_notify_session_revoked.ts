import { sql, type Kysely } from 'kysely'

// Every deletion of a session (logout, all devices, reuse detection, delete by id, password
// change, expiry clean-up, a cascade from users, even a manual DELETE) tells every instance
// through LISTEN/NOTIFY, inside the deleting transaction: the notification is sent on commit.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function auth_notify_session_revoked() returns trigger language plpgsql as $$
    begin
      perform pg_notify('auth_session_revoked', old.id::text);
      return old;
    end
    $$
  `.execute(db)
  await sql`
    create trigger user_sessions_notify_revoked
    after delete on user_sessions
    for each row execute function auth_notify_session_revoked()
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger if exists user_sessions_notify_revoked on user_sessions`.execute(db)
  await sql`drop function if exists auth_notify_session_revoked()`.execute(db)
}
