// The transmitter's streams (SSF 1.0 §8, RFC 8936; docs/ssf.md): configuration, status,
// verification and poll, each for the machine client that owns the stream (any other: 404).
import { randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
import { Semaphore } from '../concurrency.js'
import { canonicalUuid } from '../auth/claims.js'
import type { Database, SsfDeliveryMethod, SsfStreamStatus } from '../db/types.js'
import {
  acknowledge,
  deleteStream,
  findStream,
  initialCursor,
  insertStream,
  insertVerification,
  listStreams,
  pendingSets,
  POLL,
  PUSH,
  skipUndelivered,
  touchPollStream,
  updateStreamConfig,
  updateStreamStatus,
  type StreamRow
} from '../repositories/ssf-streams.js'
import { InvalidStreamRequestError, StreamNotFoundError, TooManyStreamsError, TooManyVerificationsError } from './errors.js'
import { longPoll, type EventSignal } from './poll.js'
import { deliveredTypes, eventJti, EVENT_TYPE_URIS, EVENTS_SUPPORTED, parseJti, verificationJti, type SetBuilder } from './set-builder.js'

export interface SsfSettings {
  readonly issuer: string
  /** PUBLIC_URL, and the API's prefix under it: the poll URLs are built from them. */
  readonly publicUrl: string
  readonly apiPrefix: string
  readonly pollTimeoutSeconds: number
  readonly streamIdleTtlSeconds: number
  readonly pushAllowedOrigins: readonly string[]
  readonly maxStreamsPerClient: number
  /** ACCESS_TOKEN_TTL + CLOCK_TOLERANCE: how far back a new stream starts. */
  readonly backfillSeconds: number
  /**
   * Polls doing database work at once (the rest wait their turn in memory). One event wakes every
   * waiting long poll: with a thousand streams, unbounded, they would take every connection of the
   * pool, and a logout would wait behind them (docs/ssf.md, "Poll").
   */
  readonly pollQueryConcurrency: number
}

export interface SsfContext {
  readonly db: Kysely<Database>
  readonly now: () => Date
  readonly settings: SsfSettings
  readonly sets: SetBuilder
  readonly signal: EventSignal
  /** A receiver reported SET errors (poll setErrs): logged, not redelivered. */
  readonly setErrors: (streamId: string, errors: Record<string, { err: string, description?: string }>) => void
  /** A push stream may have something new to deliver (created, re-enabled, verification). */
  readonly pushChanged: () => void
}

/** The stream configuration SSF 1.0 §8.1.1 describes. */
export interface StreamConfig {
  stream_id: string
  iss: string
  aud: string
  delivery: { method: string, endpoint_url: string }
  events_supported: string[]
  events_requested: string[]
  events_delivered: string[]
  description?: string
  inactivity_timeout?: number
}

export interface StreamStatus {
  stream_id: string
  status: SsfStreamStatus
  reason?: string
  last_polled_at?: Date
  last_delivered_at?: Date
  delivery_attempts?: number
  next_attempt_at?: Date
  last_error?: string
}

export interface DeliveryInput {
  method: SsfDeliveryMethod
  endpoint_url?: string
}

export interface StreamInput {
  delivery: DeliveryInput
  events_requested?: string[]
  description?: string | null
}

/** Members a PATCH or PUT may carry that the transmitter supplies: they must match (SSF 1.0 §8.1.1.3). */
export interface TransmitterSupplied {
  iss?: string
  aud?: string | string[]
  events_supported?: string[]
  events_delivered?: string[]
  inactivity_timeout?: number
}

export interface PollRequest {
  maxEvents?: number
  returnImmediately?: boolean
  ack?: string[]
  setErrs?: Record<string, { err: string, description?: string }>
}

export interface PollResponse {
  sets: Record<string, string>
  moreAvailable: boolean
}

const DEFAULT_MAX_EVENTS = 100
const MOST_EVENTS = 1_000
const MOST_PENDING_VERIFICATIONS = 10
const ALL_TYPES = Object.keys(EVENT_TYPE_URIS).length

const unique = (values: readonly string[]): string[] => [...new Set(values)]

export function createStreamService(ctx: SsfContext) {
  const { db, settings } = ctx
  const queries = new Semaphore(settings.pollQueryConcurrency)
  const pollUrl = (id: string) => `${settings.publicUrl}${settings.apiPrefix}/ssf/poll/${id}`

  function configOf(row: StreamRow): StreamConfig {
    const poll = row.delivery_method === POLL
    return {
      stream_id: row.id,
      iss: settings.issuer,
      aud: row.aud,
      delivery: { method: row.delivery_method, endpoint_url: poll ? pollUrl(row.id) : row.endpoint_url! },
      events_supported: [...EVENTS_SUPPORTED],
      events_requested: row.events_requested,
      events_delivered: deliveredTypes(row.events_requested).map((type) => EVENT_TYPE_URIS[type]),
      ...(row.description === null ? {} : { description: row.description }),
      ...(poll ? { inactivity_timeout: settings.streamIdleTtlSeconds } : {})
    }
  }

  /** A stream id from a request: one that is not a UUID names no stream (404, not 400). */
  function streamIdOf(value: string): string {
    const id = canonicalUuid(value)
    if (id === undefined) throw new StreamNotFoundError()
    return id
  }

  async function ownStream(clientId: string, value: string): Promise<StreamRow> {
    const row = await findStream(db, clientId, streamIdOf(value))
    if (!row) throw new StreamNotFoundError()
    return row
  }

  /** The push URL, if the operator allows its origin (SSF_PUSH_ALLOWED_ORIGINS): SSRF. */
  function pushUrl(value: string | undefined): string {
    if (settings.pushAllowedOrigins.length === 0) throw new InvalidStreamRequestError('Push delivery is not enabled on this transmitter; use poll')
    if (value === undefined) throw new InvalidStreamRequestError('delivery.endpoint_url is required for push delivery')
    let url: URL
    try {
      url = new URL(value)
    } catch {
      throw new InvalidStreamRequestError('delivery.endpoint_url is not an absolute URL')
    }
    if (url.username || url.password || url.hash || value.includes('#')) {
      throw new InvalidStreamRequestError('delivery.endpoint_url must not carry credentials or a fragment')
    }
    if (!settings.pushAllowedOrigins.includes(url.origin)) {
      throw new InvalidStreamRequestError('delivery.endpoint_url is not at an origin the operator allows for push')
    }
    return url.href
  }

  /** The delivery a request asks for, as stored. */
  function deliveryOf(delivery: DeliveryInput, existingId?: string): { method: SsfDeliveryMethod, endpointUrl: string | null } {
    if (delivery.method === PUSH) return { method: PUSH, endpointUrl: pushUrl(delivery.endpoint_url) }
    // Poll: the transmitter supplies the URL; a receiver may only echo it back.
    if (delivery.endpoint_url !== undefined && (existingId === undefined || delivery.endpoint_url !== pollUrl(existingId))) {
      throw new InvalidStreamRequestError('delivery.endpoint_url is supplied by the transmitter for poll delivery')
    }
    return { method: POLL, endpointUrl: null }
  }

  function checkTransmitterSupplied(body: TransmitterSupplied, row: StreamRow): void {
    const mismatch = (name: string) => new InvalidStreamRequestError(`${name} does not match the stream (it is supplied by the transmitter)`)
    if (body.iss !== undefined && body.iss !== settings.issuer) throw mismatch('iss')
    if (body.aud !== undefined && !(body.aud === row.aud || (Array.isArray(body.aud) && body.aud.length === 1 && body.aud[0] === row.aud))) throw mismatch('aud')
    if (body.events_supported !== undefined) {
      const given = unique(body.events_supported)
      if (given.length !== EVENTS_SUPPORTED.length || given.some((uri) => !EVENTS_SUPPORTED.includes(uri))) throw mismatch('events_supported')
    }
    if (body.inactivity_timeout !== undefined && (row.delivery_method !== POLL || body.inactivity_timeout !== settings.streamIdleTtlSeconds)) {
      throw mismatch('inactivity_timeout')
    }
    // events_delivered follows from events_requested: a read-modify-write PUT carries the old one.
  }

  async function create(clientId: string, input: StreamInput): Promise<StreamConfig> {
    const delivery = deliveryOf(input.delivery)
    const now = ctx.now()
    const cursor = await initialCursor(db, new Date(now.getTime() - settings.backfillSeconds * 1000))
    const row = await insertStream(db, {
      id: randomUUID(),
      clientId,
      aud: clientId,
      deliveryMethod: delivery.method,
      endpointUrl: delivery.endpointUrl,
      eventsRequested: unique(input.events_requested ?? []),
      description: input.description ?? null,
      cursor,
      now
    }, settings.maxStreamsPerClient)
    if (!row) throw new TooManyStreamsError()
    if (row.delivery_method === PUSH) ctx.pushChanged()
    return configOf(row)
  }

  async function read(clientId: string, streamId: string | undefined): Promise<StreamConfig | StreamConfig[]> {
    if (streamId === undefined) return (await listStreams(db, clientId)).map(configOf)
    return configOf(await ownStream(clientId, streamId))
  }

  /** PATCH (`replace` false: members left out stay) and PUT (left out: removed). */
  async function update(clientId: string, body: Partial<StreamInput> & TransmitterSupplied & { stream_id: string }, replace: boolean): Promise<StreamConfig> {
    const row = await ownStream(clientId, body.stream_id)
    checkTransmitterSupplied(body, row)
    const delivery = body.delivery === undefined
      ? { method: row.delivery_method, endpointUrl: row.endpoint_url }
      : deliveryOf(body.delivery, row.id)
    const updated = await updateStreamConfig(db, clientId, row.id, {
      deliveryMethod: delivery.method,
      endpointUrl: delivery.endpointUrl,
      eventsRequested: body.events_requested !== undefined ? unique(body.events_requested) : replace ? [] : row.events_requested,
      description: body.description !== undefined ? body.description : replace ? null : row.description,
      now: ctx.now()
    })
    if (!updated) throw new StreamNotFoundError()
    if (updated.delivery_method === PUSH) ctx.pushChanged()
    return configOf(updated)
  }

  async function remove(clientId: string, streamId: string): Promise<void> {
    if (!(await deleteStream(db, clientId, streamIdOf(streamId)))) throw new StreamNotFoundError()
  }

  function statusOf(row: StreamRow): StreamStatus {
    const reasons: string[] = row.status_reason === null ? [] : [row.status_reason]
    if (row.delivery_method === POLL) {
      const lastSeen = row.last_polled_at ?? row.created_at
      const deletedAt = new Date(lastSeen.getTime() + settings.streamIdleTtlSeconds * 1000)
      reasons.push(`deleted if not polled before ${deletedAt.toISOString()} (SSF_STREAM_IDLE_TTL)`)
    }
    return {
      stream_id: row.id,
      status: row.status,
      ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}),
      ...(row.last_polled_at ? { last_polled_at: row.last_polled_at } : {}),
      ...(row.delivery_method === PUSH
        ? {
            delivery_attempts: row.attempts,
            ...(row.last_delivered_at ? { last_delivered_at: row.last_delivered_at } : {}),
            ...(row.next_attempt_at ? { next_attempt_at: row.next_attempt_at } : {}),
            ...(row.last_error ? { last_error: row.last_error } : {})
          }
        : {})
    }
  }

  async function status(clientId: string, streamId: string): Promise<StreamStatus> {
    return statusOf(await ownStream(clientId, streamId))
  }

  async function setStatus(clientId: string, streamId: string, next: SsfStreamStatus, reason: string | undefined): Promise<StreamStatus> {
    const row = await updateStreamStatus(db, { clientId, id: streamIdOf(streamId), status: next, reason: reason ?? null, now: ctx.now() })
    if (!row) throw new StreamNotFoundError()
    if (row.delivery_method === PUSH) ctx.pushChanged()
    return statusOf(row)
  }

  async function verify(clientId: string, streamId: string, state: string | undefined): Promise<void> {
    const row = await ownStream(clientId, streamId)
    // A disabled stream holds nothing, verification events included (SSF 1.0 §8.1.2).
    if (row.status === 'disabled') return
    if (!(await insertVerification(db, row.id, state ?? null, ctx.now(), MOST_PENDING_VERIFICATIONS))) throw new TooManyVerificationsError()
    if (row.delivery_method === PUSH) ctx.pushChanged()
  }

  /** The SETs of what the stream would deliver now, jti to SET. */
  async function setsOf(streamId: string, limit: number) {
    const pending = await pendingSets(db, streamId, limit)
    if (!pending) throw new StreamNotFoundError() // deleted while we waited
    const address = { id: streamId, aud: pending.stream.aud }
    const sets: Record<string, string> = {}
    let count = 0
    for (const verification of pending.verifications) {
      sets[verificationJti(verification.id, streamId)] = ctx.sets.verificationSet(verification, address)
      count++
    }
    for (const event of pending.events) {
      sets[eventJti(event.id, streamId)] = ctx.sets.eventSet(event, address)
      count++
    }
    return { sets, count, moreAvailable: pending.moreAvailable, settling: pending.settling, types: pending.types }
  }

  /** RFC 8936 §2: acknowledgements and errors first, then what waits (a long poll by default). */
  async function poll(clientId: string, streamId: string, request: PollRequest, abort?: AbortSignal): Promise<PollResponse> {
    const id = streamIdOf(streamId)
    const row = await queries.run(() => touchPollStream(db, clientId, id, ctx.now()))
    if (!row) throw new StreamNotFoundError()
    const types = deliveredTypes(row.events_requested)

    const errors = request.setErrs ?? {}
    const answered = [...(request.ack ?? []), ...Object.keys(errors)]
    if (answered.length > 0) {
      const eventIds: string[] = []
      const verificationIds: string[] = []
      // A jti of another stream (or none of ours) is ignored, as RFC 8936 §2.4 allows.
      for (const jti of answered) {
        const named = parseJti(jti, id)
        if (named?.kind === 'event') eventIds.push(named.id)
        else if (named?.kind === 'verification') verificationIds.push(named.id)
      }
      if (Object.keys(errors).length > 0) ctx.setErrors(id, errors)
      if (eventIds.length + verificationIds.length > 0 && !(await queries.run(() => acknowledge(db, id, types, { eventIds, verificationIds })))) {
        throw new StreamNotFoundError()
      }
    }

    const limit = Math.min(request.maxEvents ?? DEFAULT_MAX_EVENTS, MOST_EVENTS)
    const immediate = request.returnImmediately === true || limit === 0
    let skipped = false
    const result = await longPoll({
      signal: ctx.signal,
      timeoutMs: immediate ? 0 : settings.pollTimeoutSeconds * 1000,
      abort,
      read: () => queries.run(async () => {
        const found = await setsOf(id, limit)
        // Nothing for this stream: move its cursor over the events of types it does not take.
        if (found.count === 0 && !found.moreAvailable && !skipped && found.types.length < ALL_TYPES) {
          skipped = true
          await skipUndelivered(db, id, found.types)
        }
        return { ready: found.count > 0 || found.moreAvailable, settling: found.settling, result: found }
      })
    })
    return { sets: result.sets, moreAvailable: result.moreAvailable }
  }

  return { create, read, update, remove, status, setStatus, verify, poll, configOf }
}

export type StreamService = ReturnType<typeof createStreamService>
