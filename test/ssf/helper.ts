// Shared pieces of the SSF tests (docs/ssf.md). Every app runs on a database of its own: a
// stream sees every user's events, so another test file's logouts must not reach it.
import { createLocalJWKSet, jwtVerify, type JWTPayload, type JWTVerifyResult } from 'jose'
import { sql } from 'kysely'
import type { Test } from 'tap'
import type { App } from '../../src/app.js'
import { API_PREFIX, bearer, buildTestApp, machineToken, testClient, type TestAppOptions, type TestClient, type TestContext } from '../helper.js'
import type { StreamConfig } from '../../src/ssf/streams.js'
import { eventsBeyondHorizon } from '../../src/repositories/ssf-streams.js'
import { HORIZON_HOLDERS_QUERY, HORIZON_QUERY } from '../support/horizon-report.js'

export const SSF = `${API_PREFIX}/ssf`
export const STREAMS = `${SSF}/streams`
export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
export const POLL = 'urn:ietf:rfc:8936'
export const PUSH = 'urn:ietf:rfc:8935'

export interface SsfTestContext extends TestContext {
  /** A client with ssf.manage and ssf.read, and its machine token. */
  receiver: TestClient
  token: string
}

/** An app with one SSF client (and `extraClients`), on a database of its own. */
export async function ssfApp(t: Test, options: TestAppOptions & { extraClients?: TestClient[] } = {}): Promise<SsfTestContext> {
  const receiver = testClient('ssf.manage ssf.read')
  const ctx = await buildTestApp(t, {
    ownDatabase: true,
    ...options,
    env: { SSF_POLL_TIMEOUT: '2s', ...options.env },
    clients: [receiver, ...(options.extraClients ?? [])]
  })
  return { ...ctx, receiver, token: await machineToken(ctx.app, receiver) }
}

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'

/** A call to the SSF endpoints with this machine token (null: none). */
export function ssfCall(app: App, token: string | null, method: Method, path: string, payload?: unknown) {
  return app.inject({
    method,
    url: `${SSF}${path}`,
    headers: token === null ? {} : bearer(token),
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> })
  })
}

export type { StreamConfig }

export async function createStream(app: App, token: string, body: Record<string, unknown> = { delivery: { method: POLL }, events_requested: [SESSION_REVOKED, CREDENTIAL_CHANGE] }): Promise<StreamConfig> {
  const res = await ssfCall(app, token, 'POST', '/streams', body)
  if (res.statusCode !== 201) throw new Error(`stream creation failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

export interface PollBody {
  sets: Record<string, string>
  moreAvailable: boolean
}

/** One poll request; returnImmediately unless the body says otherwise. */
export async function pollOnce(app: App, token: string, streamId: string, body: Record<string, unknown> = {}): Promise<PollBody> {
  const res = await ssfCall(app, token, 'POST', `/poll/${streamId}`, { returnImmediately: true, ...body })
  if (res.statusCode !== 200) throw new Error(`poll failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

/**
 * A poll as a test means it: what the stream has once every committed event can be delivered. On
 * PostgreSQL an event committed while an older transaction of its database is still open waits
 * for it (the horizon, docs/ssf.md), and the suite's files run side by side: an empty answer is
 * repeated (the acknowledgements were taken) while committed events wait above the horizon, as
 * asked before each poll. The horizon only moves on, but for one case: a transaction of another
 * database that ends between a statement's snapshot and its look at pg_stat_activity cannot be
 * placed, and counts for that statement. So an empty answer with nothing settling is asked once more.
 */
export async function poll(app: App, token: string, streamId: string, body: Record<string, unknown> = {}): Promise<PollBody> {
  const deadline = Date.now() + 20_000
  const isEmpty = (answer: PollBody) => Object.keys(answer.sets).length === 0
  let settling = await eventsBeyondHorizon(app.db, streamId, ['session-revoked', 'credential-change'])
  let answer = await pollOnce(app, token, streamId, body)
  let askedAgain = false
  while (isEmpty(answer) && Date.now() < deadline) {
    if (!settling) {
      if (askedAgain) break
      askedAgain = true
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
    settling = await eventsBeyondHorizon(app.db, streamId, ['session-revoked', 'credential-change'])
    answer = await pollOnce(app, token, streamId, { ...body, ack: [] })
  }
  if (isEmpty(answer) && settling) {
    throw new Error(`events still above the horizon after 20 s; transactions holding it: ${JSON.stringify(await horizonHolders(app))}`)
  }
  return answer
}

/** On a failed check: the stream's cursor, the horizon and the events after the cursor, for the failure's report. */
export async function cursorReport(app: App, streamId: string): Promise<unknown> {
  const { rows } = await sql`
    select s.status, s.cursor_txid::text as cursor_txid, s.cursor_id::text as cursor_id,
      (select json_agg(json_build_object('id', e.id, 'txid', e.txid::text, 'type', e.event_type) order by e.txid, e.id)
         from security_events e where (e.txid, e.id) > (s.cursor_txid, s.cursor_id)) as after_cursor,
      (select json_agg(a.event_id) from ssf_stream_acks a where a.stream_id = s.id) as acks
    from ssf_streams s where s.id = ${streamId}::uuid`.execute(app.db)
  const { rows: [horizon] } = await sql.raw(HORIZON_QUERY).execute(app.db)
  return { stream: rows[0], horizon, holders: await horizonHolders(app) }
}

async function horizonHolders(app: App): Promise<unknown[]> {
  return (await sql.raw(HORIZON_HOLDERS_QUERY).execute(app.db)).rows
}

/** Polls (acknowledging everything) until nothing is left; every SET received, in order. */
export async function drain(app: App, token: string, streamId: string): Promise<string[]> {
  const received: string[] = []
  let ack: string[] = []
  for (let round = 0; round < 100; round++) {
    const body = await poll(app, token, streamId, { ack })
    const jtis = Object.keys(body.sets)
    received.push(...jtis.map((jti) => body.sets[jti]))
    ack = jtis
    if (jtis.length === 0 && !body.moreAvailable) return received
  }
  throw new Error('the stream never ran dry')
}

export function decodeSet(set: string): { header: Record<string, any>, payload: Record<string, any> } {
  const [header, payload] = set.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()))
  return { header, payload }
}

/** The single event of a SET: its type URI and body. */
export function eventOf(set: string): { type: string, body: Record<string, any>, payload: Record<string, any> } {
  const { payload } = decodeSet(set)
  const [type, body] = Object.entries(payload.events as Record<string, Record<string, any>>)[0]
  return { type, body, payload }
}

/** Verifies SETs as a receiver does: the JWKS from /.well-known/jwks.json, iss, aud, typ. */
export async function setVerifier(app: App, issuer: string, audience: string): Promise<(set: string) => Promise<JWTVerifyResult<JWTPayload>>> {
  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  const jwks = createLocalJWKSet(res.json())
  return (set) => jwtVerify(set, jwks, { issuer, audience, typ: 'secevent+jwt' })
}

/** Waits until `check` is true, polling every 20 ms; fails after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}
