// Push delivery (RFC 8935, docs/ssf.md, "Push"): each enabled push stream is delivered by the
// one instance holding its lease, one SET at a time in stream order; the cursor moves only when
// the receiver answered 202 for that SET. Failures are retried with exponential back-off and
// jitter. Woken by the same notification as the long polls, and by a timer.
import { randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { FastifyBaseLogger } from 'fastify'
import type { Database } from '../db/types.js'
import {
  acknowledge,
  leasePushStreams,
  pendingSets,
  PUSH,
  recordPushFailure,
  releasePushLeases
} from '../repositories/ssf-streams.js'
import { FIRST_RECHECK_MS, MAX_RECHECK_MS } from './poll.js'
import type { SetBuilder } from './set-builder.js'

export interface PushDelivererOptions {
  readonly db: Kysely<Database>
  readonly sets: SetBuilder
  readonly allowedOrigins: readonly string[]
  readonly log: FastifyBaseLogger
  readonly now: () => Date
  /** Seconds a lease lasts; renewed every third of it. */
  readonly leaseSeconds?: number
  readonly requestTimeoutMs?: number
  /** Seconds before the first retry; doubled per failure up to maxRetrySeconds. */
  readonly firstRetrySeconds?: number
  readonly maxRetrySeconds?: number
  /** Streams delivered at the same time by this instance. */
  readonly concurrency?: number
}

/** What one POST came to. `final`: this SET is done with (202, or refused as malformed). */
type Outcome = { final: true, note?: string } | { final: false, error: string }

const BATCH = 20
const RESCAN_MS = 1_000
const MOST_LEASES = 1_000
const MOST_ERROR_BODY = 4_096

/** The next retry: exponential in the attempts, with jitter (half to all of it). */
export function retryDelaySeconds(attempts: number, first: number, most: number): number {
  const ceiling = Math.min(most, first * 2 ** Math.max(0, attempts - 1))
  return ceiling / 2 + Math.random() * (ceiling / 2)
}

async function readSome(response: Response): Promise<string> {
  if (!response.body) return ''
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    while (size < MOST_ERROR_BODY) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      size += value.byteLength
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
  return Buffer.concat(chunks).subarray(0, MOST_ERROR_BODY).toString('utf8')
}

export function createPushDeliverer(options: PushDelivererOptions) {
  const owner = `${process.pid}/${randomUUID()}`
  const leaseSeconds = options.leaseSeconds ?? 30
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000
  const firstRetry = options.firstRetrySeconds ?? 0.25
  const maxRetry = options.maxRetrySeconds ?? 300
  const concurrency = options.concurrency ?? 8
  const { db, log } = options

  const stopping = new AbortController()
  const delivering = new Map<string, Promise<void>>()
  let ticking: Promise<void> | undefined
  let again = false
  let timer: NodeJS.Timeout | undefined
  let started = false
  /** The streams this instance held the lease of at the last round. */
  let leasedStreams = new Set<string>()
  /** Streams woken while their delivery ran: it goes round once more when it ends. */
  const wokenWhileDelivering = new Set<string>()
  /** Streams left out for want of a free slot: started when one frees. */
  const waitingForSlot = new Set<string>()
  /** Streams backing off after a failure: not before this time (ms), whatever wakes them. */
  const backingOffUntil = new Map<string, number>()
  /**
   * Streams whose next events are committed but above the horizon (an older transaction still
   * runs): no notification says when it passes them, so each is looked at again on a timer of
   * its own, doubling from FIRST_RECHECK_MS to MAX_RECHECK_MS, as a long poll does.
   */
  const settling = new Map<string, { timer?: NodeJS.Timeout, delayMs: number }>()
  let lastRescanMs = 0

  let timerDueAt = 0
  function schedule(ms: number): void {
    if (stopping.signal.aborted) return
    clearTimeout(timer)
    timerDueAt = Date.now() + Math.max(0, ms)
    timer = setTimeout(() => void tick(), Math.max(0, ms))
    timer.unref()
  }

  /** A lease round within `ms`, unless one is already due sooner. */
  function scheduleWithin(ms: number): void {
    if (!ticking && timerDueAt > Date.now() + ms) schedule(ms)
  }

  /**
   * Push streams changed (created, updated, resumed): lease again soon; several changes during a
   * lease round make one more.
   */
  function rescan(): void {
    if (!started || stopping.signal.aborted) return
    if (ticking) again = true
    else schedule(0)
  }

  /**
   * New events were recorded somewhere: deliver on the streams this instance leases, and at most
   * once a second look for streams to lease. Without SSF_PUSH_ALLOWED_ORIGINS no push stream can
   * exist and the deliverer never starts: a logout costs no instance a round trip for it.
   */
  function wake(): void {
    if (!started || stopping.signal.aborted) return
    const nowMs = Date.now()
    // Streams created on another instance, or given back by one that shut down, are leased by a
    // round of their own: at most one a second however many events arrive.
    const sinceRescan = nowMs - lastRescanMs
    if (sinceRescan >= RESCAN_MS) rescan()
    else scheduleWithin(RESCAN_MS - sinceRescan)
    for (const streamId of leasedStreams) {
      if ((backingOffUntil.get(streamId) ?? 0) <= nowMs) startDelivery(streamId)
    }
  }

  async function tick(): Promise<void> {
    if (ticking || stopping.signal.aborted) return
    ticking = (async () => {
      let nextInMs = (leaseSeconds * 1000) / 3
      try {
        do {
          again = false
          lastRescanMs = Date.now()
          const leased = await leasePushStreams(db, owner, leaseSeconds, MOST_LEASES)
          leasedStreams = new Set(leased.map((stream) => stream.id))
          backingOffUntil.clear()
          for (const stream of leased) {
            if (stream.dueInSeconds > 0) {
              backingOffUntil.set(stream.id, Date.now() + stream.dueInSeconds * 1000)
              nextInMs = Math.min(nextInMs, stream.dueInSeconds * 1000 + 5)
            } else startDelivery(stream.id)
          }
        } while (again && !stopping.signal.aborted)
      } catch (err) {
        if (!stopping.signal.aborted) log.warn({ err }, 'ssf push: could not lease streams; retrying')
        nextInMs = Math.min(nextInMs, 2_000)
      } finally {
        ticking = undefined
        schedule(nextInMs)
      }
    })()
    await ticking
  }

  function startDelivery(streamId: string): void {
    if (delivering.has(streamId)) {
      // Its last look for pending SETs may have come before this event committed.
      wokenWhileDelivering.add(streamId)
      return
    }
    if (delivering.size >= concurrency) {
      waitingForSlot.add(streamId)
      return
    }
    waitingForSlot.delete(streamId)
    const run = deliverStream(streamId)
      .then((stillSettling) => {
        if (stillSettling) recheckWhenSettled(streamId)
        else forgetSettling(streamId)
      })
      .catch((err: unknown) => {
        if (!stopping.signal.aborted) log.warn({ err, streamId }, 'ssf push: delivery failed; retrying')
      })
      .finally(() => {
        delivering.delete(streamId)
        // Once more if it was woken meanwhile (unless it now backs off: the timer brings it back);
        // else the slot goes to a stream that waited for one.
        const woken = wokenWhileDelivering.delete(streamId)
        if (woken && (backingOffUntil.get(streamId) ?? 0) <= Date.now()) startDelivery(streamId)
        else {
          const next = waitingForSlot.values().next()
          if (!next.done) startDelivery(next.value)
        }
      })
    delivering.set(streamId, run)
  }

  function recheckWhenSettled(streamId: string): void {
    const entry = settling.get(streamId) ?? { delayMs: FIRST_RECHECK_MS }
    settling.set(streamId, entry)
    if (entry.timer || stopping.signal.aborted) return
    entry.timer = setTimeout(() => {
      entry.timer = undefined
      if (leasedStreams.has(streamId)) startDelivery(streamId)
      else settling.delete(streamId)
    }, entry.delayMs)
    entry.timer.unref()
    entry.delayMs = Math.min(entry.delayMs * 2, MAX_RECHECK_MS)
  }

  function forgetSettling(streamId: string): void {
    clearTimeout(settling.get(streamId)?.timer)
    settling.delete(streamId)
  }

  async function post(url: string, set: string): Promise<Outcome> {
    if (!options.allowedOrigins.includes(new URL(url).origin)) {
      return { final: false, error: 'endpoint_url is no longer at an allowed origin (SSF_PUSH_ALLOWED_ORIGINS)' }
    }
    let response: Response
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json' },
        body: set,
        // SSRF: only the registered URL is ever requested; a redirect is a failure.
        redirect: 'manual',
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(requestTimeoutMs)])
      })
    } catch (err) {
      const name = (err as Error).name
      return { final: false, error: name === 'TimeoutError' ? `no answer within ${requestTimeoutMs} ms` : `request failed (${(err as Error).message})` }
    }
    const body = await readSome(response).catch(() => '')
    if (response.status === 202) return { final: true }
    if (response.status === 400) {
      // RFC 8935 §2.4: `invalid_request` says this SET itself is bad, and sending it again cannot
      // help (like a poll's setErrs). Any other error names a configuration to fix: retried.
      let err: unknown
      try {
        err = (JSON.parse(body) as { err?: unknown }).err
      } catch {
        err = undefined
      }
      if (err === 'invalid_request') return { final: true, note: body.slice(0, 512) }
      return { final: false, error: `400${typeof err === 'string' ? ` ${err.slice(0, 64)}` : ''}` }
    }
    if (response.status >= 300 && response.status < 400) return { final: false, error: `${response.status} redirect (not followed)` }
    return { final: false, error: `${response.status}` }
  }

  /**
   * Delivers what waits on one stream, in order, until it is empty or a POST fails. True if it
   * stopped at events still settling above the horizon.
   */
  async function deliverStream(streamId: string): Promise<boolean> {
    while (!stopping.signal.aborted) {
      const pending = await pendingSets(db, streamId, BATCH)
      if (!pending || pending.stream.delivery_method !== PUSH || pending.stream.lease_owner !== owner || !pending.stream.endpoint_url) return false
      if (pending.verifications.length === 0 && pending.events.length === 0) return pending.settling
      const { types } = pending
      const address = { id: streamId, aud: pending.stream.aud }
      const queue = [
        ...pending.verifications.map((verification) => ({ set: options.sets.verificationSet(verification, address), ack: { eventIds: [], verificationIds: [verification.id] } })),
        ...pending.events.map((event) => ({ set: options.sets.eventSet(event, address), ack: { eventIds: [event.id], verificationIds: [] } }))
      ]
      for (const item of queue) {
        if (stopping.signal.aborted) return false
        const outcome = await post(pending.stream.endpoint_url!, item.set)
        if (!outcome.final) {
          const attempts = pending.stream.attempts + 1
          const delay = retryDelaySeconds(attempts, firstRetry, maxRetry)
          backingOffUntil.set(streamId, Date.now() + delay * 1000)
          await recordPushFailure(db, streamId, owner, outcome.error, delay)
          log.warn({ streamId, attempts, retryInSeconds: Math.round(delay * 10) / 10, error: outcome.error }, 'ssf push: receiver did not accept the SET; will retry')
          schedule(delay * 1000 + 5)
          return false
        }
        if (outcome.note !== undefined) log.warn({ streamId, answer: outcome.note }, 'ssf push: receiver refused a SET as invalid; not sent again')
        if (!(await acknowledge(db, streamId, types, item.ack, { leaseOwner: owner, delivered: options.now() }))) return false
        pending.stream.attempts = 0
      }
    }
    return false
  }

  return {
    owner,
    start(): void {
      if (options.allowedOrigins.length === 0) return
      started = true
      schedule(0)
    },
    wake,
    rescan,
    /** Stops delivering (in-flight POSTs are aborted) and gives the leases back. */
    async stop(): Promise<void> {
      if (stopping.signal.aborted) return
      stopping.abort()
      clearTimeout(timer)
      for (const { timer } of settling.values()) clearTimeout(timer)
      settling.clear()
      await ticking?.catch(() => {})
      await Promise.allSettled([...delivering.values()])
      if (started) await releasePushLeases(db, owner).catch((err: unknown) => log.warn({ err }, 'ssf push: could not release leases'))
    },
    /** For tests: whether anything is in flight. */
    get busy(): boolean {
      return ticking !== undefined || delivering.size > 0
    }
  }
}

export type PushDeliverer = ReturnType<typeof createPushDeliverer>
