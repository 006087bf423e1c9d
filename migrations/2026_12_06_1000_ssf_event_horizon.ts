import { sql, type Kysely } from 'kysely'

// The horizon a Shared Signals stream reads the event log up to (docs/ssf.md, "How a stream reads
// the log"): the oldest transaction of this database still running in the calling statement's
// snapshot, or, if none, the first txid not yet handed out. pg_snapshot_xmin(pg_current_snapshot())
// counts every database on the server, so a long transaction in any of them held every stream
// back. A running transaction is left out only when pg_stat_activity places it in another
// database (its datid and backend_xid are shown to every role); one it cannot place (ended since
// the snapshot, a prepared transaction) still counts, so an error is only ever a short wait,
// never a skipped event. The calling transaction's own txid counts, as in pg_snapshot_xmin.
//
// A STABLE function runs on its caller's snapshot, so the horizon and the rows the calling
// statement reads are seen at the same instant. PL/pgSQL keeps its plan per connection: inlined
// in each query, the sub-select over pg_stat_get_activity cost about 0.3 ms of planning per poll.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function auth_event_horizon() returns xid8 language plpgsql stable as $$
    begin
      return (
        select least(coalesce(min(running.xid), pg_snapshot_xmax(pg_current_snapshot())), pg_current_xact_id_if_assigned())
        from pg_snapshot_xip(pg_current_snapshot()) as running(xid)
        where not exists (
          select 1 from pg_stat_get_activity(null) as backend
          where backend.backend_xid = running.xid::xid
            and backend.datid <> (select oid from pg_database where datname = current_database())));
    end
    $$
  `.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function if exists auth_event_horizon()`.execute(db)
}
