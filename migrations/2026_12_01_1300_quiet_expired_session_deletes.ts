import { sql, type Kysely } from 'kysely'

// Deleting a session that expired a while ago tells no instance anything: every token of it has
// expired too (an access token never outlives its session, and refresh checks expires_at), so no
// instance can accept one whatever its caches hold. Yet each such delete sent a notification that
// every instance had to handle: a large clean-up stalled every instance and filled its liveness
// cache with dead entries that pushed out the live ones. Now only sessions that are live, or expired less than a minute ago by the
// database's clock (a margin for clocks that disagree), are announced.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create or replace function auth_notify_session_revoked() returns trigger language plpgsql as $$
    begin
      if old.expires_at > now() - interval '1 minute' then
        perform pg_notify('auth_session_revoked', old.id::text);
      end if;
      return old;
    end
    $$
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    create or replace function auth_notify_session_revoked() returns trigger language plpgsql as $$
    begin
      perform pg_notify('auth_session_revoked', old.id::text);
      return old;
    end
    $$
  `.execute(db)
}
