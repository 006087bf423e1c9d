import { sql, type Kysely } from 'kysely'

// Shared Signals streams (docs/ssf.md). A stream is a cursor into security_events, not a copy of
// the events: an event costs one row whatever the number of streams.
//
// The cursor is a (txid, id) position, read in that order. Identity values are handed out before
// commit and not in xid order, so an id cursor could be passed by a lower id committing later;
// a reader takes only rows whose transaction precedes every running one (txid below the snapshot's
// xmin), and any transaction still to commit has a txid at or above that xmin, so nothing can
// land behind a (txid, id) cursor. Acknowledgements beyond the cursor wait in ssf_stream_acks
// until the cursor passes them. Verification events are per stream, in ssf_verifications.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ssf_streams')
    .addColumn('id', 'uuid', (col) => col.primaryKey())
    .addColumn('client_id', 'text', (col) => col.notNull())
    .addColumn('aud', 'text', (col) => col.notNull())
    .addColumn('delivery_method', 'text', (col) => col.notNull().check(sql`delivery_method in ('urn:ietf:rfc:8936', 'urn:ietf:rfc:8935')`))
    // Push only: the receiver's URL. A poll stream's URL is this service's, built from PUBLIC_URL.
    .addColumn('endpoint_url', 'text')
    .addColumn('events_requested', sql`text[]`, (col) => col.notNull().defaultTo(sql`'{}'`))
    .addColumn('description', 'text')
    .addColumn('status', 'text', (col) => col.notNull().defaultTo('enabled').check(sql`status in ('enabled', 'paused', 'disabled')`))
    .addColumn('status_reason', 'text')
    .addColumn('cursor_txid', sql`xid8`, (col) => col.notNull())
    .addColumn('cursor_id', 'bigint', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull())
    .addColumn('last_polled_at', 'timestamptz')
    // Push delivery: the instance holding the stream until lease_until (the database's clock),
    // and the retry state of the SET at the head of the stream.
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'timestamptz')
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('last_delivered_at', 'timestamptz')
    .addCheckConstraint('ssf_streams_push_endpoint', sql`(delivery_method = 'urn:ietf:rfc:8935') = (endpoint_url is not null)`)
    .execute()
  await db.schema.createIndex('ssf_streams_client_idx').on('ssf_streams').columns(['client_id', 'created_at']).execute()

  await db.schema.createIndex('security_events_txid_id_idx').on('security_events').columns(['txid', 'id']).execute()

  await db.schema
    .createTable('ssf_stream_acks')
    .addColumn('stream_id', 'uuid', (col) => col.notNull().references('ssf_streams.id').onDelete('cascade'))
    .addColumn('event_id', 'bigint', (col) => col.notNull().references('security_events.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('ssf_stream_acks_pkey', ['stream_id', 'event_id'])
    .execute()
  await db.schema.createIndex('ssf_stream_acks_event_idx').on('ssf_stream_acks').column('event_id').execute()

  await db.schema
    .createTable('ssf_verifications')
    .addColumn('id', 'bigint', (col) => col.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('stream_id', 'uuid', (col) => col.notNull().references('ssf_streams.id').onDelete('cascade'))
    .addColumn('state', 'text')
    .addColumn('requested_at', 'timestamptz', (col) => col.notNull())
    .execute()
  await db.schema.createIndex('ssf_verifications_stream_idx').on('ssf_verifications').columns(['stream_id', 'id']).execute()
  // A verification wakes the long polls like any other event.
  await sql`
    create trigger ssf_verifications_notify
    after insert on ssf_verifications
    for each statement execute function auth_notify_security_event()
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ssf_verifications').execute()
  await db.schema.dropTable('ssf_stream_acks').execute()
  await db.schema.dropIndex('security_events_txid_id_idx').execute()
  await db.schema.dropTable('ssf_streams').execute()
}
