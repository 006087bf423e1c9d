import { sql, type Kysely } from 'kysely'

// Rate-limit counts shared by every instance (src/plugins/rate-limit-stores.ts): one fixed window
// per key, counted by one atomic upsert, so N instances allow the configured rate once, not N
// times. Expired windows are deleted by the clean-up.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('rate_limit_counts')
    .addColumn('key', 'text', (col) => col.primaryKey())
    .addColumn('count', 'integer', (col) => col.notNull())
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .execute()
  await db.schema.createIndex('rate_limit_counts_expires_idx').on('rate_limit_counts').column('expires_at').execute()
  // Counts are rewritten on every limited request: leave room for HOT updates.
  await sql`alter table rate_limit_counts set (fillfactor = 70)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('rate_limit_counts').execute()
}
