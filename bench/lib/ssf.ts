// What the downstream, propagation and streams measurements need besides load: the downstream
// process (bench/downstream-server.ts) and the stream receivers (bench/stream-receivers.ts) as
// child processes on 127.0.0.1, the propagation probe, and small readers (RSS, CPU, percentiles).
// Every wait is bounded.
import { readFileSync } from 'node:fs'
import { freePort, sleep, startChild, waitUntilReady, type Child } from './children.js'
import { API, machineToken, type Session } from './http.js'
import { cpuBetween, cpuSnapshot, LatencyRecorder } from './load.js'
import { RUNTIME_FLAGS } from './service.js'

export const now = (): number => performance.timeOrigin + performance.now()

export interface MachineClientCredentials {
  readonly id: string
  readonly secret: string
}

export interface Downstream {
  readonly url: string
  readonly child: Child
}

/** Starts bench/downstream-server.ts against the service, with its own SSF poll stream (the client's). */
export async function startDownstream(issuer: string, audience: string, client: MachineClientCredentials): Promise<Downstream> {
  const port = await freePort()
  const child = startChild('downstream', [...RUNTIME_FLAGS, '--import', 'tsx', 'bench/downstream-server.ts'], {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    DOWNSTREAM_ISSUER: issuer,
    DOWNSTREAM_AUDIENCE: audience,
    DOWNSTREAM_CLIENT_ID: client.id,
    DOWNSTREAM_CLIENT_SECRET: client.secret
  })
  const url = `http://127.0.0.1:${port}`
  // listen() waits for the verifier's ready(): its stream is created and caught up.
  await waitUntilReady(child, `${url}/ready`, 60_000)
  return { url, child }
}

export interface DownstreamStatus {
  state: string
  streamId: string | null
  eventsReceived: number
  revokedSessions: number
  lastError: string | null
}

export async function downstreamStatus(url: string): Promise<DownstreamStatus> {
  const response = await fetch(`${url}/status`, { signal: AbortSignal.timeout(5_000) })
  return await response.json() as DownstreamStatus
}

/** GET `path` on the downstream with each token; counts the statuses. */
export async function downstreamStatuses(url: string, path: string, tokens: readonly string[]): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {}
  for (const token of tokens) {
    let status: string
    try {
      const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) })
      await response.arrayBuffer()
      status = String(response.status)
    } catch (error) {
      status = `error:${(error as Error).name}`
    }
    statuses[status] = (statuses[status] ?? 0) + 1
  }
  return statuses
}

export interface PropagationOptions {
  readonly serviceUrl: string
  readonly downstreamUrl: string
  /** One per try; each is logged out once and never used again. */
  readonly sessions: readonly Session[]
  /** From the start of one try to the start of the next. */
  readonly intervalMs: number
  /** Pause between two probes of the same token. */
  readonly probeDelayMs: number
  /** A try whose token is still accepted after this long counts as timed out. */
  readonly timeoutMs: number
  /** Tries stop when this says the load is over. */
  readonly running: () => boolean
}

export interface PropagationResult {
  /** ms from the logout's 204 (as the bench saw it) to the first 401 "session has ended" from /protected. */
  readonly delays: number[]
  readonly timedOut: number
  /** Logouts that did not answer 204, probes that got something else than 204 or the 401. */
  readonly errors: string[]
  /** Sessions logged out (204). */
  readonly loggedOut: Session[]
  /** Sessions not tried (the load ended first): still alive. */
  readonly untried: Session[]
}

/** The verifier's 401 for a revoked session (packages/verifier/src/http.ts), not for a bad token. */
const REVOKED = 'The session has ended'

/**
 * While the load runs: log out one session through the service, then ask the downstream's
 * /protected with its access token in a tight loop until it answers 401 for a revoked session.
 */
export async function probePropagation(options: PropagationOptions): Promise<PropagationResult> {
  const delays: number[] = []
  const errors: string[] = []
  const loggedOut: Session[] = []
  let timedOut = 0
  let next = 0
  while (next < options.sessions.length && options.running()) {
    const session = options.sessions[next++]
    const started = now()
    try {
      const response = await fetch(`${options.serviceUrl}${API}/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${session.access}` },
        signal: AbortSignal.timeout(10_000)
      })
      await response.arrayBuffer()
      if (response.status !== 204) {
        errors.push(`logout answered ${response.status}`)
        continue
      }
      loggedOut.push(session)
      const ended = now()
      const deadline = ended + options.timeoutMs
      for (;;) {
        const probe = await fetch(`${options.downstreamUrl}/protected`, {
          headers: { authorization: `Bearer ${session.access}` },
          signal: AbortSignal.timeout(5_000)
        })
        await probe.arrayBuffer()
        const answered = now()
        if (probe.status === 401 && (probe.headers.get('www-authenticate') ?? '').includes(REVOKED)) {
          delays.push(answered - ended)
          break
        }
        if (probe.status !== 204) {
          errors.push(`/protected answered ${probe.status} ${probe.headers.get('www-authenticate') ?? ''}`.trim())
          break
        }
        if (answered >= deadline) {
          timedOut++
          break
        }
        await sleep(options.probeDelayMs)
      }
    } catch (error) {
      errors.push(`${(error as Error).name}: ${(error as Error).message}`)
    }
    const spent = now() - started
    if (spent < options.intervalMs && options.running()) await sleep(options.intervalMs - spent)
  }
  return { delays, timedOut, errors, loggedOut, untried: options.sessions.slice(next) }
}

export interface Distribution {
  readonly count: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

export function distribution(values: readonly number[]): Distribution {
  const recorder = new LatencyRecorder()
  for (const value of values) recorder.add(value)
  const [p50, p99, max] = recorder.percentiles(50, 99, 100)
  return { count: values.length, p50, p99, max }
}

/** VmRSS of a process, bytes (Linux); NaN elsewhere. */
export function readVmRss(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

/** Waits until the process group uses less than `cores` CPU over `windowMs` (bounded by `timeoutMs`); true if it did. */
export async function waitForQuiet(group: number, cores = 0.1, windowMs = 250, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const before = cpuSnapshot()
    await sleep(windowMs)
    const used = cpuBetween(before, cpuSnapshot(), (p) => p.group === group)
    if (!Number.isFinite(used) || used / (windowMs / 1000) < cores) return true
  }
  return false
}

export interface Receivers {
  readonly url: string
  readonly child: Child
  start(service: string, clients: ReadonlyArray<MachineClientCredentials & { count: number }>): Promise<{ streams: number, ms: number }>
  stop(): Promise<{ deleted: number }>
  mark(): Promise<void>
  counts(expect: number, waitMs: number): Promise<{ streams: number, min: number, max: number }>
  watch(sid: string): Promise<void>
  arrivals(sid: string, waitMs: number): Promise<{ streams: number, arrivals: number[], eventIds: string[] }>
  stats(): Promise<{ streams: number, polls: number, failures: number, lastFailure: string | null }>
  /** The receivers' clock minus this process's, ms (from the quickest of a few round trips). */
  clockOffset(): Promise<number>
}

export async function startReceivers(): Promise<Receivers> {
  const port = await freePort()
  const child = startChild('stream receivers', [...RUNTIME_FLAGS, '--import', 'tsx', 'bench/stream-receivers.ts'], {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port)
  })
  const url = `http://127.0.0.1:${port}`
  await waitUntilReady(child, `${url}/ready`, 60_000)
  const call = async <T>(method: string, path: string, body?: unknown, timeoutMs = 15_000): Promise<T> => {
    const response = await fetch(`${url}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs)
    })
    const text = await response.text()
    if (!response.ok) throw new Error(`stream receivers: ${method} ${path}: ${response.status} ${text.slice(0, 300)}`)
    return (text ? JSON.parse(text) : undefined) as T
  }
  return {
    url,
    child,
    start: (service, clients) => call('POST', '/streams', { service, clients }, 300_000),
    stop: () => call('DELETE', '/streams', undefined, 120_000),
    mark: () => call('POST', '/mark'),
    counts: (expect, waitMs) => call('GET', `/counts?expect=${expect}&waitMs=${waitMs}`, undefined, waitMs + 15_000),
    watch: (sid) => call('POST', '/watch', { sid }),
    arrivals: (sid, waitMs) => call('GET', `/watch?sid=${encodeURIComponent(sid)}&waitMs=${waitMs}`, undefined, waitMs + 15_000),
    stats: () => call('GET', '/stats'),
    async clockOffset() {
      let best = { rtt: Infinity, offset: 0 }
      for (let i = 0; i < 5; i++) {
        const sent = now()
        const { now: theirs } = await call<{ now: number }>('GET', '/clock')
        const received = now()
        if (received - sent < best.rtt) best = { rtt: received - sent, offset: theirs - (sent + received) / 2 }
      }
      return best.offset
    }
  }
}

/** The streams these clients have, as GET /ssf/streams lists them (PGlite: the bench cannot query the database). */
export async function streamsViaApi(serviceUrl: string, clients: readonly MachineClientCredentials[]): Promise<number> {
  let total = 0
  for (const client of clients) {
    const authorization = `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`
    const token = await machineToken(serviceUrl, authorization, 'ssf.read')
    const response = await fetch(`${serviceUrl}${API}/ssf/streams`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) })
    const text = await response.text()
    if (response.status !== 200) throw new Error(`GET /ssf/streams: ${response.status} ${text.slice(0, 200)}`)
    total += (JSON.parse(text) as unknown[]).length
  }
  return total
}
