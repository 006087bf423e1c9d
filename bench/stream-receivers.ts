// The receivers of the `streams` scenario (bench/README.md): a process of its own holding many SSF
// poll streams (RFC 8936) at the service, each with a long poll waiting all the time, so that their
// CPU is not the load generator's. Controlled by the bench over HTTP on 127.0.0.1:
//   POST   /streams  {service, clients: [{id, secret, count}]}  create the streams and start polling;
//                    answers once every stream has its first long poll on the way
//   POST   /watch    {sid}       record when each stream receives the event of this session
//   GET    /watch?sid=&waitMs=   the arrival times (waits until every stream has it, bounded)
//   POST   /mark                 count SETs from now on
//   GET    /counts?expect=&waitMs=  SETs per stream since the mark (waits until each has `expect`, bounded)
//   GET    /clock                this process's clock (performance.timeOrigin + performance.now())
//   GET    /stats                polls answered, failures, the last failure
//   DELETE /streams              stop polling and delete every stream
// A SET is counted and acknowledged, not verified: verifying it is the receiver's cost, not the
// service's (the downstream scenario's verifier does verify its SETs).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
const API = '/api/v1/auth'

const now = () => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface ClientSpec {
  id: string
  secret: string
  count: number
}

interface Receiver {
  id: string
  pollUrl: string
  client: MachineClient
  acks: string[]
  /** SETs received since the last mark. */
  received: number
  /** A long poll (returnImmediately false) has been sent at least once. */
  longPolling: boolean
}

class MachineClient {
  private token: { value: string, renewAt: number } | undefined
  private pending: Promise<string> | undefined

  constructor(readonly service: string, readonly id: string, private readonly secret: string) {}

  async bearer(): Promise<string> {
    if (this.token && now() < this.token.renewAt) return `Bearer ${this.token.value}`
    this.pending ??= this.fetchToken().finally(() => (this.pending = undefined))
    return `Bearer ${await this.pending}`
  }

  forget(): void {
    this.token = undefined
  }

  private async fetchToken(): Promise<string> {
    const response = await fetch(`${this.service}${API}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${this.id}:${this.secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded'
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'ssf.read ssf.manage' }).toString(),
      signal: AbortSignal.timeout(15_000)
    })
    const body = await response.json() as { access_token?: string, expires_in?: number }
    if (response.status !== 200 || typeof body.access_token !== 'string') throw new Error(`POST /token: ${response.status}`)
    const lifetimeMs = (body.expires_in ?? 60) * 1000
    this.token = { value: body.access_token, renewAt: now() + lifetimeMs * 0.8 }
    return body.access_token
  }
}

const receivers: Receiver[] = []
/** sid -> stream id -> arrival time, and the event ids (the jti's first part) seen for it. */
const watched = new Map<string, { arrivals: Map<string, number>, eventIds: Set<string> }>()
let stopping = false
let abort = new AbortController()
let polls = 0
let failures = 0
let lastFailure: string | null = null
const loops: Promise<void>[] = []

async function request(url: string, init: RequestInit & { timeoutMs?: number }): Promise<{ status: number, text: string }> {
  const signal = AbortSignal.any([AbortSignal.timeout(init.timeoutMs ?? 15_000), abort.signal])
  const response = await fetch(url, { ...init, signal })
  return { status: response.status, text: await response.text() }
}

async function mapLimit<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++])
  }))
}

async function createStream(client: MachineClient): Promise<Receiver> {
  const base = `${client.service}${API}/ssf`
  const json = async () => ({ authorization: await client.bearer(), 'content-type': 'application/json' })
  const created = await request(`${base}/streams`, {
    method: 'POST',
    headers: await json(),
    body: JSON.stringify({ delivery: { method: 'urn:ietf:rfc:8936' }, events_requested: [SESSION_REVOKED], description: 'auth-service bench receiver' })
  })
  if (created.status !== 201) throw new Error(`POST /ssf/streams: ${created.status} ${created.text.slice(0, 200)}`)
  const config = JSON.parse(created.text) as { stream_id: string, delivery: { endpoint_url: string } }
  // Disabled, then enabled again: "enabling it again starts after what happened meanwhile"
  // (docs/ssf.md), so the stream skips its backfill of the events of the last ACCESS_TOKEN_TTL
  // (earlier scenarios' logouts, other runs' on a shared database). The backfill is not measured.
  for (const status of ['disabled', 'enabled']) {
    const changed = await request(`${base}/status`, { method: 'POST', headers: await json(), body: JSON.stringify({ stream_id: config.stream_id, status }) })
    if (changed.status !== 200) throw new Error(`POST /ssf/status ${status}: ${changed.status} ${changed.text.slice(0, 200)}`)
  }
  return { id: config.stream_id, pollUrl: config.delivery.endpoint_url, client, acks: [], received: 0, longPolling: false }
}

/** Polls one stream until stopped: at once first (to be caught up), then long polls, acknowledging what it got. */
async function pollLoop(receiver: Receiver): Promise<void> {
  let immediate = true
  let backoff = 100
  while (!stopping) {
    const acks = receiver.acks
    receiver.acks = []
    try {
      if (!immediate) receiver.longPolling = true
      const answer = await request(receiver.pollUrl, {
        method: 'POST',
        headers: { authorization: await receiver.client.bearer(), 'content-type': 'application/json' },
        body: JSON.stringify({ maxEvents: 1000, returnImmediately: immediate, ...(acks.length > 0 ? { ack: acks } : {}) }),
        timeoutMs: 300_000
      })
      const at = now()
      if (answer.status === 401) receiver.client.forget()
      if (answer.status !== 200) throw new Error(`poll ${receiver.id}: ${answer.status} ${answer.text.slice(0, 200)}`)
      polls++
      const body = JSON.parse(answer.text) as { sets: Record<string, string>, moreAvailable: boolean }
      for (const [jti, set] of Object.entries(body.sets)) {
        receiver.received++
        receiver.acks.push(jti)
        if (watched.size > 0) record(receiver, jti, set, at)
      }
      immediate = body.moreAvailable
      backoff = 100
    } catch (error) {
      receiver.acks.unshift(...acks)
      if (stopping) break
      failures++
      lastFailure = error instanceof Error ? error.message : String(error)
      immediate = true
      await sleep(backoff)
      backoff = Math.min(backoff * 2, 5_000)
    }
  }
}

function record(receiver: Receiver, jti: string, set: string, at: number): void {
  try {
    const payload = JSON.parse(Buffer.from(set.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub_id?: { session?: { id?: string } } }
    const sid = payload.sub_id?.session?.id
    const watch = sid === undefined ? undefined : watched.get(sid)
    if (!watch || watch.arrivals.has(receiver.id)) return
    watch.arrivals.set(receiver.id, at)
    watch.eventIds.add(jti.split('.')[0])
  } catch {
    // not a SET this process understands: counted all the same
  }
}

async function start(service: string, clients: ClientSpec[]): Promise<{ streams: number, ms: number }> {
  const started = now()
  stopping = false
  abort = new AbortController()
  const work = clients.flatMap((spec) => {
    const client = new MachineClient(service, spec.id, spec.secret)
    return Array.from({ length: spec.count }, () => client)
  })
  await mapLimit(work, 16, async (client) => {
    const receiver = await createStream(client)
    receivers.push(receiver)
    loops.push(pollLoop(receiver))
  })
  // Bounded: every stream's first long poll is on its way (its server side registers it right after).
  const deadline = now() + 60_000
  while (receivers.some((r) => !r.longPolling) && now() < deadline) await sleep(20)
  return { streams: receivers.length, ms: now() - started }
}

async function stop(): Promise<number> {
  stopping = true
  abort.abort()
  await Promise.race([Promise.all(loops), sleep(10_000)])
  loops.length = 0
  abort = new AbortController()
  let deleted = 0
  await mapLimit([...receivers], 16, async (receiver) => {
    const url = `${receiver.client.service}${API}/ssf/streams?stream_id=${receiver.id}`
    const answer = await request(url, { method: 'DELETE', headers: { authorization: await receiver.client.bearer() } }).catch(() => ({ status: 0 }))
    if (answer.status === 204) deleted++
  })
  receivers.length = 0
  return deleted
}

async function bodyOf(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = ''
  for await (const chunk of req) text += chunk
  return text ? JSON.parse(text) as Record<string, unknown> : {}
}

async function until(done: () => boolean, waitMs: number): Promise<void> {
  const deadline = now() + Math.min(waitMs, 300_000)
  while (!done() && now() < deadline) await sleep(2)
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1')
  const send = (status: number, body?: unknown) => {
    res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' }).end(body === undefined ? undefined : JSON.stringify(body))
  }
  const route = `${req.method} ${url.pathname}`
  switch (route) {
    case 'GET /ready': return send(204)
    case 'GET /clock': return send(200, { now: now() })
    case 'GET /stats': return send(200, { streams: receivers.length, polls, failures, lastFailure })
    case 'POST /streams': {
      const body = await bodyOf(req)
      return send(200, await start(String(body.service), body.clients as ClientSpec[]))
    }
    case 'DELETE /streams': return send(200, { deleted: await stop() })
    case 'POST /mark':
      for (const r of receivers) r.received = 0
      return send(204)
    case 'GET /counts': {
      const expect = Number(url.searchParams.get('expect') ?? 0)
      await until(() => receivers.every((r) => r.received >= expect), Number(url.searchParams.get('waitMs') ?? 0))
      const counts = receivers.map((r) => r.received)
      return send(200, { streams: receivers.length, min: Math.min(...counts), max: Math.max(...counts) })
    }
    case 'POST /watch': {
      const body = await bodyOf(req)
      watched.set(String(body.sid), { arrivals: new Map(), eventIds: new Set() })
      return send(204)
    }
    case 'GET /watch': {
      const sid = url.searchParams.get('sid') ?? ''
      const watch = watched.get(sid)
      if (!watch) return send(404)
      await until(() => watch.arrivals.size >= receivers.length, Number(url.searchParams.get('waitMs') ?? 0))
      watched.delete(sid)
      return send(200, { streams: receivers.length, arrivals: [...watch.arrivals.values()], eventIds: [...watch.eventIds] })
    }
    default: return send(404)
  }
}

const host = process.env.HOST ?? '127.0.0.1'
if (host !== '127.0.0.1') {
  console.error('the bench\'s receivers listen on 127.0.0.1 only')
  process.exit(1)
}
const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }))
  })
})
const close = () => {
  const forced = setTimeout(() => process.exit(0), 15_000)
  forced.unref()
  void stop().finally(() => process.exit(0))
}
process.once('SIGTERM', close)
process.once('SIGINT', close)
server.listen(Number(process.env.PORT ?? 0), host)
