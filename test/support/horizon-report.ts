// Queries for a failure's report on PostgreSQL (docs/ssf.md, the horizon): shared by the SSF
// tests (through Kysely) and the verifier package's (through pg).

/** The event horizon the service reads up to, beside the server-wide xmin. */
export const HORIZON_QUERY = 'select auth_event_horizon()::text as horizon, pg_snapshot_xmin(pg_current_snapshot())::text as server_xmin'

/** The transactions with an xid, oldest first, in every database of the server (those of the service's own hold the horizon back). */
export const HORIZON_HOLDERS_QUERY = `
  select datname, pid, backend_xid::text as xid, state, xact_start, left(query, 200) as query
  from pg_stat_activity where backend_xid is not null order by age(backend_xid) desc`
