// Shared Signals streams (migrations/…_ssf_streams.ts, docs/ssf.md, "How a stream reads the log").
// A stream is a (txid, id) cursor into security_events. It is handed only events below the
// horizon (txid < the oldest transaction of this database still running: every transaction that
// could still commit an event comes after them), and its cursor moves over the contiguous run of
// such events that are acknowledged or of a type it does not receive. Acknowledgements beyond the
// cursor wait in ssf_stream_acks.
import { sql, type RawBuilder, type Selectable } from 'kysely'
import type { SecurityEventType } from './security-events.js'
import type { SsfStreamsTable, SsfStreamStatus } from '../db/types.js'
import { deliveredTypes, type LoggedEvent, type PendingVerification } from '../ssf/set-builder.js'
import type { Executor } from './executor.js'

export type StreamRow = Selectable<SsfStreamsTable>
export const POLL = 'urn:ietf:rfc:8936'
export const PUSH = 'urn:ietf:rfc:8935'

/**
 * The oldest transaction of this database still running (migrations/…_ssf_event_horizon.ts).
 * A sub-select, so that a statement evaluates it once, not once per row it filters.
 */
const HORIZON = sql`(select auth_event_horizon())`

/** Every column, the cursor's xid8 and bigint as text (both engines then agree). */
const STREAM_COLUMNS = sql.raw(`id, client_id, aud, delivery_method, endpoint_url, events_requested, description, status,
  status_reason, cursor_txid::text as cursor_txid, cursor_id::text as cursor_id, created_at, updated_at, last_polled_at,
  lease_owner, lease_until, attempts, next_attempt_at, last_error, last_delivered_at`)

/** A position in the log's (txid, id) order. */
export interface Cursor {
  readonly txid: string
  readonly id: string
}

/**
 * Where a new stream starts: just before the first event that occurred at or after `since`
 * (whose access tokens may still be alive), but never past the horizon, so an event still being
 * committed is not skipped. Older events after that point are delivered too; that is harmless.
 */
export async function initialCursor(db: Executor, since: Date): Promise<Cursor> {
  const { rows } = await sql<{ horizon: string, txid: string | null, id: string | null }>`
    select ${HORIZON}::text as horizon, first.txid::text as txid, (first.id - 1)::text as id
    from (select 1) as one
    left join lateral (
      select txid, id from security_events where occurred_at >= ${since} order by txid, id limit 1
    ) as first on true`.execute(db)
  const { horizon, txid, id } = rows[0]
  if (txid === null || id === null || BigInt(txid) >= BigInt(horizon)) return { txid: horizon, id: '0' }
  return { txid, id }
}

export interface NewStream {
  id: string
  clientId: string
  aud: string
  deliveryMethod: typeof POLL | typeof PUSH
  endpointUrl: string | null
  eventsRequested: string[]
  description: string | null
  cursor: Cursor
  now: Date
}

/**
 * Inserts a stream unless the client already has `maxStreams`: the count and the insert are one
 * statement, and the client's advisory lock makes concurrent creations take turns.
 */
export async function insertStream(db: Executor, stream: NewStream, maxStreams: number): Promise<StreamRow | undefined> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('ssf_streams'), hashtext(${stream.clientId}))`.execute(trx)
    const { rows } = await sql<StreamRow>`
      insert into ssf_streams (id, client_id, aud, delivery_method, endpoint_url, events_requested, description,
                               cursor_txid, cursor_id, created_at, updated_at)
      select ${stream.id}::uuid, ${stream.clientId}, ${stream.aud}, ${stream.deliveryMethod}, ${stream.endpointUrl},
             ${stream.eventsRequested}::text[], ${stream.description}, ${stream.cursor.txid}::xid8, ${stream.cursor.id}::bigint,
             ${stream.now}, ${stream.now}
      where (select count(*) from ssf_streams where client_id = ${stream.clientId}) < ${maxStreams}
      returning ${STREAM_COLUMNS}`.execute(trx)
    return rows[0]
  })
}

export async function findStream(db: Executor, clientId: string, id: string): Promise<StreamRow | undefined> {
  const { rows } = await sql<StreamRow>`
    select ${STREAM_COLUMNS} from ssf_streams where id = ${id}::uuid and client_id = ${clientId}`.execute(db)
  return rows[0]
}

export async function listStreams(db: Executor, clientId: string): Promise<StreamRow[]> {
  const { rows } = await sql<StreamRow>`
    select ${STREAM_COLUMNS} from ssf_streams where client_id = ${clientId} order by created_at, id`.execute(db)
  return rows
}

export interface StreamConfigChange {
  deliveryMethod: typeof POLL | typeof PUSH
  endpointUrl: string | null
  eventsRequested: string[]
  description: string | null
  now: Date
}

/** Replaces the receiver-supplied configuration; a change of delivery drops the push state. */
export async function updateStreamConfig(db: Executor, clientId: string, id: string, change: StreamConfigChange): Promise<StreamRow | undefined> {
  const { rows } = await sql<StreamRow>`
    update ssf_streams set
      events_requested = ${change.eventsRequested}::text[],
      description = ${change.description},
      updated_at = ${change.now},
      lease_owner = case when delivery_method = ${change.deliveryMethod} and endpoint_url is not distinct from ${change.endpointUrl} then lease_owner end,
      lease_until = case when delivery_method = ${change.deliveryMethod} and endpoint_url is not distinct from ${change.endpointUrl} then lease_until end,
      attempts = case when delivery_method = ${change.deliveryMethod} and endpoint_url is not distinct from ${change.endpointUrl} then attempts else 0 end,
      next_attempt_at = case when delivery_method = ${change.deliveryMethod} and endpoint_url is not distinct from ${change.endpointUrl} then next_attempt_at end,
      last_error = case when delivery_method = ${change.deliveryMethod} and endpoint_url is not distinct from ${change.endpointUrl} then last_error end,
      delivery_method = ${change.deliveryMethod},
      endpoint_url = ${change.endpointUrl}
    where id = ${id}::uuid and client_id = ${clientId}
    returning ${STREAM_COLUMNS}`.execute(db)
  return rows[0]
}

export async function deleteStream(db: Executor, clientId: string, id: string): Promise<boolean> {
  const { rows } = await sql`delete from ssf_streams where id = ${id}::uuid and client_id = ${clientId} returning id`.execute(db)
  return rows.length > 0
}

/**
 * Sets the status. Disabled means events are not held (SSF 1.0 §8.1.2): leaving `disabled`
 * moves the cursor to the horizon, and disabling drops what waited.
 */
export async function updateStreamStatus(
  db: Executor,
  change: { clientId: string, id: string, status: SsfStreamStatus, reason: string | null, now: Date }
): Promise<StreamRow | undefined> {
  return db.transaction().execute(async (trx) => {
    const { rows: locked } = await sql<{ status: SsfStreamStatus }>`
      select status from ssf_streams where id = ${change.id}::uuid and client_id = ${change.clientId} for update`.execute(trx)
    if (locked.length === 0) return undefined
    const wasDisabled = locked[0].status === 'disabled'
    if (change.status === 'disabled' || wasDisabled) {
      await sql`delete from ssf_stream_acks where stream_id = ${change.id}::uuid`.execute(trx)
      await sql`delete from ssf_verifications where stream_id = ${change.id}::uuid`.execute(trx)
    }
    const { rows } = await sql<StreamRow>`
      update ssf_streams set
        status = ${change.status}, status_reason = ${change.reason}, updated_at = ${change.now},
        cursor_txid = case when ${wasDisabled && change.status !== 'disabled'} then ${HORIZON} else cursor_txid end,
        cursor_id = case when ${wasDisabled && change.status !== 'disabled'} then 0 else cursor_id end,
        attempts = 0, next_attempt_at = null
      where id = ${change.id}::uuid
      returning ${STREAM_COLUMNS}`.execute(trx)
    return rows[0]
  })
}

/** Queues a verification event unless `maxPending` already wait; false if refused. */
export async function insertVerification(db: Executor, streamId: string, state: string | null, at: Date, maxPending: number): Promise<boolean> {
  const { rows } = await sql`
    insert into ssf_verifications (stream_id, state, requested_at)
    select ${streamId}::uuid, ${state}, ${at}
    where (select count(*) from ssf_verifications where stream_id = ${streamId}::uuid) < ${maxPending}
    returning id`.execute(db)
  return rows.length > 0
}

/** A poll: the stream, if it is this client's poll stream, with its last poll recorded. */
export async function touchPollStream(db: Executor, clientId: string, id: string, now: Date): Promise<StreamRow | undefined> {
  const { rows } = await sql<StreamRow>`
    update ssf_streams set last_polled_at = ${now}
    where id = ${id}::uuid and client_id = ${clientId} and delivery_method = ${POLL}
    returning ${STREAM_COLUMNS}`.execute(db)
  return rows[0]
}

interface EventRow {
  id: string
  txid: string
  occurred_at: Date
  event_type: SecurityEventType
  user_id: string
  session_id: string | null
  initiating_entity: string
  reason_admin: string
  detail: Record<string, unknown> | string | null
}

export interface PendingSets {
  readonly stream: StreamRow
  /** The types the stream receives (from its configuration as just read). */
  readonly types: SecurityEventType[]
  readonly verifications: PendingVerification[]
  readonly events: LoggedEvent[]
  /** More than `limit` were waiting. */
  readonly moreAvailable: boolean
  /** Events of its types wait above the horizon: committed, deliverable once it passes them. */
  readonly settling: boolean
}

const toEvent = (row: EventRow): LoggedEvent => ({
  id: row.id,
  txid: row.txid,
  occurredAt: row.occurred_at,
  type: row.event_type,
  userId: row.user_id,
  sessionId: row.session_id,
  initiatingEntity: row.initiating_entity,
  reason: row.reason_admin,
  // jsonb: an object on pg, and on PGlite too; parsed if a driver hands back text.
  detail: typeof row.detail === 'string' ? (JSON.parse(row.detail) as Record<string, unknown>) : row.detail
})

/**
 * What the stream would deliver now, in order: its pending verification events, then the
 * unacknowledged events below the horizon after its cursor, of the types it receives; at most
 * `limit` in all. Nothing while the stream is not enabled. Undefined if the stream is gone.
 */
export async function pendingSets(db: Executor, streamId: string, limit: number): Promise<PendingSets | undefined> {
  const { rows: streams } = await sql<StreamRow>`select ${STREAM_COLUMNS} from ssf_streams where id = ${streamId}::uuid`.execute(db)
  const stream = streams[0]
  if (!stream) return undefined
  const types = deliveredTypes(stream.events_requested)
  if (stream.status !== 'enabled') return { stream, types, verifications: [], events: [], moreAvailable: false, settling: false }
  const { rows: verifications } = await sql<{ id: string, state: string | null, requested_at: Date }>`
    select id::text as id, state, requested_at from ssf_verifications
    where stream_id = ${streamId}::uuid order by id limit ${limit + 1}`.execute(db)
  const room = limit + 1 - verifications.length
  const { events, settling } = room > 0 && types.length > 0
    ? await eventsAfterCursor(db, streamId, types, room)
    : { events: [], settling: false }
  const all = verifications.length + events.length
  const verificationsShown = verifications.slice(0, limit)
  const eventsShown = events.slice(0, Math.max(0, limit - verificationsShown.length))
  return {
    stream,
    types,
    verifications: verificationsShown.map((row) => ({ id: row.id, state: row.state, requestedAt: row.requested_at })),
    events: eventsShown.map(toEvent),
    moreAvailable: all > limit,
    settling
  }
}

/**
 * Up to `limit` unacknowledged events below the horizon after the stream's cursor, and whether
 * others wait above it. One statement, so one snapshot: an event missing from the first because
 * of the horizon is always counted in the second (asked apart, the horizon could pass it between
 * the two, and a long poll would then sleep on an event already deliverable).
 */
async function eventsAfterCursor(db: Executor, streamId: string, types: readonly SecurityEventType[], limit: number) {
  const { rows } = await sql<EventRow & { settling: boolean }>`
    with horizon as (select ${HORIZON} as xmin),
    shown as (
      select e.id, e.txid, e.occurred_at, e.event_type, e.user_id, e.session_id, e.initiating_entity, e.reason_admin, e.detail
      from ssf_streams s
      join security_events e on (e.txid, e.id) > (s.cursor_txid, s.cursor_id)
      where s.id = ${streamId}::uuid
        and e.txid < (select xmin from horizon)
        and e.event_type = any(${types}::text[])
        and not exists (select 1 from ssf_stream_acks a where a.stream_id = s.id and a.event_id = e.id)
      order by e.txid, e.id
      limit ${limit}
    )
    select ${settlingAfterCursor(streamId, types, sql`(select xmin from horizon)`)} as settling,
           shown.id::text as id, shown.txid::text as txid, shown.occurred_at, shown.event_type, shown.user_id,
           shown.session_id, shown.initiating_entity, shown.reason_admin, shown.detail
    from (select 1) as one
    left join shown on true
    order by shown.txid, shown.id`.execute(db)
  return { events: rows.filter((row) => row.id !== null), settling: rows[0]?.settling === true }
}

/** Whether events of these types wait after the stream's cursor but at or above `horizon`. */
function settlingAfterCursor(streamId: string, types: readonly SecurityEventType[], horizon: RawBuilder<unknown>) {
  return sql<boolean>`exists (
    select 1 from ssf_streams s
    join security_events e on (e.txid, e.id) > (s.cursor_txid, s.cursor_id)
    where s.id = ${streamId}::uuid and e.txid >= ${horizon} and e.event_type = any(${types}::text[]))`
}

/** Whether events of these types wait after the cursor but above the horizon (still settling). */
export async function eventsBeyondHorizon(db: Executor, streamId: string, types: readonly SecurityEventType[]): Promise<boolean> {
  if (types.length === 0) return false
  const { rows } = await sql<{ settling: boolean }>`select ${settlingAfterCursor(streamId, types, HORIZON)} as settling`.execute(db)
  return rows[0].settling
}

export interface Acknowledgement {
  readonly eventIds: readonly string[]
  readonly verificationIds: readonly string[]
}

/**
 * Records acknowledgements (and SET errors, which end redelivery just the same) and moves the
 * cursor, under the stream's row lock. Only events the stream could have been handed count:
 * after its cursor and below the horizon. `leaseOwner`: only while that instance holds the
 * stream (push). False if the stream is gone (or the lease lost).
 */
export async function acknowledge(
  db: Executor,
  streamId: string,
  types: readonly SecurityEventType[],
  ack: Acknowledgement,
  options: { leaseOwner?: string, delivered?: Date } = {}
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const { rows: locked } = options.leaseOwner === undefined
      ? await sql`select 1 from ssf_streams where id = ${streamId}::uuid for update`.execute(trx)
      : await sql`select 1 from ssf_streams where id = ${streamId}::uuid and lease_owner = ${options.leaseOwner} for update`.execute(trx)
    if (locked.length === 0) return false
    if (ack.verificationIds.length > 0) {
      await sql`delete from ssf_verifications where stream_id = ${streamId}::uuid and id = any(${ack.verificationIds}::bigint[])`.execute(trx)
    }
    if (ack.eventIds.length > 0) {
      await sql`
        insert into ssf_stream_acks (stream_id, event_id)
        select s.id, e.id from ssf_streams s
        join security_events e on (e.txid, e.id) > (s.cursor_txid, s.cursor_id)
        where s.id = ${streamId}::uuid and e.id = any(${ack.eventIds}::bigint[]) and e.txid < ${HORIZON}
        on conflict do nothing`.execute(trx)
    }
    await advanceCursor(trx, streamId, types)
    if (options.delivered) {
      await sql`
        update ssf_streams set attempts = 0, next_attempt_at = null, last_error = null, last_delivered_at = ${options.delivered}
        where id = ${streamId}::uuid`.execute(trx)
    }
    return true
  })
}

/**
 * Moves the cursor to the last event below the horizon before the first one the stream still
 * has to deliver (an event of its types, unacknowledged), then forgets the acknowledgements it
 * passed. Inside the transaction holding the stream's row.
 */
async function advanceCursor(trx: Executor, streamId: string, types: readonly SecurityEventType[]): Promise<void> {
  const { rows } = await sql<{ moved: boolean }>`
    with s as (select cursor_txid, cursor_id from ssf_streams where id = ${streamId}::uuid),
    horizon as (select ${HORIZON} as xmin),
    blocker as (
      select e.txid, e.id from security_events e, s, horizon
      where (e.txid, e.id) > (s.cursor_txid, s.cursor_id) and e.txid < horizon.xmin
        and e.event_type = any(${types}::text[])
        and not exists (select 1 from ssf_stream_acks a where a.stream_id = ${streamId}::uuid and a.event_id = e.id)
      order by e.txid, e.id limit 1),
    passed as (
      select e.txid, e.id from security_events e, s, horizon
      where (e.txid, e.id) > (s.cursor_txid, s.cursor_id) and e.txid < horizon.xmin
        and (not exists (select 1 from blocker) or (e.txid, e.id) < (select blocker.txid, blocker.id from blocker))
      order by e.txid desc, e.id desc limit 1)
    update ssf_streams set cursor_txid = passed.txid, cursor_id = passed.id
    from passed where ssf_streams.id = ${streamId}::uuid
    returning true as moved`.execute(trx)
  if (rows.length === 0) return
  await sql`
    delete from ssf_stream_acks a using security_events e, ssf_streams s
    where a.stream_id = ${streamId}::uuid and s.id = a.stream_id and e.id = a.event_id
      and (e.txid, e.id) <= (s.cursor_txid, s.cursor_id)`.execute(trx)
}

/** Moves the cursor over what needs no delivery (nothing pending, or types the stream does not take). */
export async function skipUndelivered(db: Executor, streamId: string, types: readonly SecurityEventType[]): Promise<void> {
  await acknowledge(db, streamId, types, { eventIds: [], verificationIds: [] })
}

/** Housekeeping: deletes up to `limit` poll streams last polled (or created) before `cutoff`. */
export async function deleteIdlePollStreams(db: Executor, cutoff: Date, limit: number): Promise<number> {
  const { rows } = await sql`
    delete from ssf_streams where id in (
      select id from ssf_streams
      where delivery_method = ${POLL} and coalesce(last_polled_at, created_at) < ${cutoff}
      limit ${limit} for update skip locked)
    returning id`.execute(db)
  return rows.length
}

/** A push stream this instance holds, and in how many seconds its next attempt is due (0: now). */
export interface LeasedStream {
  readonly id: string
  readonly dueInSeconds: number
}

/**
 * Takes (or keeps) the lease of enabled push streams nobody else holds, on the database's clock
 * so that every instance agrees; a stream is delivered only by its holder.
 */
export async function leasePushStreams(db: Executor, owner: string, leaseSeconds: number, limit: number): Promise<LeasedStream[]> {
  const { rows } = await sql<{ id: string, due: number }>`
    update ssf_streams set lease_owner = ${owner}, lease_until = clock_timestamp() + make_interval(secs => ${leaseSeconds})
    where id in (
      select id from ssf_streams
      where delivery_method = ${PUSH} and status = 'enabled'
        and (lease_owner = ${owner} or lease_until is null or lease_until < clock_timestamp())
      order by id limit ${limit}
      for update skip locked)
    returning id, greatest(0, coalesce(extract(epoch from next_attempt_at - clock_timestamp()), 0))::float8 as due`.execute(db)
  return rows.map((row) => ({ id: row.id, dueInSeconds: Number(row.due) }))
}

/** Gives up every lease of `owner` (shutting down), so another instance takes over at once. */
export async function releasePushLeases(db: Executor, owner: string): Promise<void> {
  await sql`update ssf_streams set lease_owner = null, lease_until = null where lease_owner = ${owner}`.execute(db)
}

/** A failed push: the next attempt in `retryInSeconds` (database clock), while `owner` holds it. */
export async function recordPushFailure(db: Executor, streamId: string, owner: string, error: string, retryInSeconds: number): Promise<number> {
  const { rows } = await sql<{ attempts: number }>`
    update ssf_streams set attempts = attempts + 1, last_error = ${error},
      next_attempt_at = clock_timestamp() + make_interval(secs => ${retryInSeconds})
    where id = ${streamId}::uuid and lease_owner = ${owner}
    returning attempts`.execute(db)
  return rows[0]?.attempts ?? 0
}
