import { sql, type Kysely } from 'kysely'

// Service-to-service administration (docs/clients.md): an administrator can disable a user (no
// login, no refresh, every session ended) and enable them again, and every admin action is
// audited with the machine client that did it as its actor. Both columns take a constant
// default, so adding them rewrites no rows.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('disabled', 'boolean', (col) => col.notNull().defaultTo(false)).execute()
  await db.schema.alterTable('auth_events').addColumn('actor_client_id', 'text').execute()
  await sql`comment on column auth_events.actor_client_id is 'The machine client that acted (admin endpoints); null: the user or the service itself'`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('auth_events').dropColumn('actor_client_id').execute()
  await db.schema.alterTable('users').dropColumn('disabled').execute()
}
