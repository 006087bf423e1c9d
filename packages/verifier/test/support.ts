// Test support: the real auth service as a process on 127.0.0.1 (the repository's own
// test/support/server-process.ts), a machine client for the verifier in a real SERVICE_CLIENTS_FILE,
// users logging in and out through the public API, and a stand-in SSF transmitter for the tests that
// only need the stream to answer (offline verification) while the service has none of its own.
import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import type { Test } from 'tap'
import { generateClientSecret, hashClientSecret } from '../../../src/auth/service-clients.js'
import { HORIZON_HOLDERS_QUERY, HORIZON_QUERY } from '../../../test/support/horizon-report.js'
import { startServer, type ServerProcess } from '../../../test/support/server-process.js'
import type { FetchLike, VerifierLogger } from '../src/index.js'

export const API = '/api/v1/auth'
export const PASSWORD = 'correct horse battery staple'
export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'

export interface Client {
  clientId: string
  clientSecret: string
}

export interface Auth {
  server: ServerProcess
  /** The issuer and public URL: a Front's (server.url is the process's own address). */
  url: string
  client: Client
  privateKeyPem: string
  /** Stops the process (SIGTERM, then SIGKILL), by its pid. */
  stop(): Promise<void>
}

export interface AuthOptions {
  algorithm?: 'EdDSA' | 'ES256'
  privateKeyPem?: string
  /** Retired public keys (PEM) that still verify: JWT_VERIFY_KEYS. */
  verifyKeys?: string[]
  /**
   * PUBLIC_URL and JWT_ISSUER: a Front's URL that instances behind it share. Default: a front of
   * this instance's own.
   */
  publicUrl?: string
  client?: Client
  /** More machine clients in the clients file, with their scopes (an admin tool, say). */
  extraClients?: Array<{ client: Client, scope: string }>
  env?: Record<string, string>
}

export function signingKeyPem(algorithm: 'EdDSA' | 'ES256' = 'EdDSA'): string {
  const { privateKey } = algorithm === 'EdDSA'
    ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
}

/** The public half of a PKCS#8 private key, as JWT_VERIFY_KEYS takes it. */
export function publicKeyPem(privateKeyPem: string): string {
  return createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString()
}

export function newClient(): Client {
  return { clientId: `verifier-${randomUUID().slice(0, 8)}`, clientSecret: generateClientSecret() }
}

/**
 * Starts the auth service with a machine client holding `ssf.read ssf.manage introspect`. On
 * PostgreSQL when TEST_DATABASE_URL is set (the suite's database; emails are unique), else PGlite.
 */
export async function startAuth(t: Test, options: AuthOptions = {}): Promise<Auth> {
  const algorithm = options.algorithm ?? 'EdDSA'
  const privateKeyPem = options.privateKeyPem ?? signingKeyPem(algorithm)
  const client = options.client ?? newClient()
  const dir = mkdtempSync(path.join(tmpdir(), 'verifier-test-'))
  const clientsFile = path.join(dir, 'clients.json')
  writeFileSync(clientsFile, JSON.stringify({
    clients: [{ client, scope: 'ssf.read ssf.manage introspect' }, ...options.extraClients ?? []].map(({ client, scope }) => (
      { client_id: client.clientId, client_secret_hash: hashClientSecret(client.clientSecret), scope }
    ))
  }))
  const env: Record<string, string> = {
    JWT_ALGORITHM: algorithm,
    JWT_PRIVATE_KEY: privateKeyPem,
    SERVICE_CLIENTS_FILE: clientsFile,
    ...(options.verifyKeys?.length ? { JWT_VERIFY_KEYS: options.verifyKeys.join('\n') } : {}),
    ...(process.env.TEST_DATABASE_URL ? { DATABASE_URL: process.env.TEST_DATABASE_URL } : {}),
    ...options.env
  }
  // The issuer is a URL the verifier can fetch the metadata from: a front on a port of its own
  // (the service's port is only known once it runs), named by PUBLIC_URL and JWT_ISSUER.
  const front = options.publicUrl ? undefined : await startFront(t)
  const publicUrl = options.publicUrl ?? front!.url
  env.PUBLIC_URL = publicUrl
  env.JWT_ISSUER = publicUrl
  const server = await startServer(env)
  if (front) front.target = Number(new URL(server.url).port)
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  t.teardown(stop)
  return { server, url: publicUrl, client, privateKeyPem, stop }
}

export interface Session {
  email: string
  accessToken: string
  refreshToken: string
  userId: string
}

async function json(response: Response): Promise<Record<string, unknown>> {
  const text = await response.text()
  try {
    return JSON.parse(text)
  } catch {
    throw new Error(`${response.status}: not JSON: ${text.slice(0, 200)}`)
  }
}

export async function register(auth: Pick<Auth, 'url'>, email = `verifier-${randomUUID()}@example.com`): Promise<Session> {
  const response = await fetch(`${auth.url}${API}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD })
  })
  const body = await json(response)
  if (response.status !== 201) throw new Error(`register: ${response.status} ${JSON.stringify(body)}`)
  return { email, accessToken: body.access_token as string, refreshToken: body.refresh_token as string, userId: (body.user as { id: string }).id }
}

export async function login(auth: Pick<Auth, 'url'>, email: string): Promise<Session> {
  const response = await fetch(`${auth.url}${API}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD })
  })
  const body = await json(response)
  if (response.status !== 200) throw new Error(`login: ${response.status} ${JSON.stringify(body)}`)
  return { email, accessToken: body.access_token as string, refreshToken: body.refresh_token as string, userId: (body.user as { id: string }).id }
}

export async function logout(auth: Pick<Auth, 'url'>, accessToken: string): Promise<number> {
  const response = await fetch(`${auth.url}${API}/logout`, { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } })
  await response.arrayBuffer()
  return response.status
}

export async function machineToken(auth: Pick<Auth, 'url' | 'client'>, scope = 'ssf.read ssf.manage'): Promise<string> {
  const response = await fetch(`${auth.url}${API}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${auth.client.clientId}:${auth.client.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded'
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }).toString()
  })
  const body = await json(response)
  if (response.status !== 200) throw new Error(`token: ${response.status} ${JSON.stringify(body)}`)
  return body.access_token as string
}

/** Whether the service is a Shared Signals transmitter (its /.well-known/ssf-configuration exists). */
export async function hasTransmitter(auth: Pick<Auth, 'url'>): Promise<boolean> {
  const response = await fetch(`${auth.url}/.well-known/ssf-configuration`)
  await response.arrayBuffer()
  return response.status === 200
}

export const NO_TRANSMITTER = 'the auth service has no SSF transmitter yet (/.well-known/ssf-configuration answers 404)'

/** Options for createVerifier pointed at `auth`, quiet, short timeouts. */
export function verifierOptions(auth: Auth, extra: Record<string, unknown> = {}) {
  return {
    issuer: auth.url,
    audience: 'api',
    clientId: auth.client.clientId,
    clientSecret: auth.client.clientSecret,
    logger: quietLogger(),
    readyTimeoutMs: 15_000,
    ...extra
  }
}

export interface CapturedLogger extends VerifierLogger {
  lines: Array<{ level: string, message: string, details: object }>
}

export function quietLogger(): CapturedLogger {
  const lines: CapturedLogger['lines'] = []
  const at = (level: string) => (details: object, message?: string) => {
    lines.push({ level, message: message ?? '', details })
  }
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }
}

/**
 * A stand-in transmitter for a service without one: the SSF configuration, stream creation and
 * deletion and a poll endpoint that answers "no events" (a long poll after `holdMs`), through
 * the verifier's `fetch` option; everything else goes to the real service. The stand-in names
 * the real JWKS, so only revocation is faked, never a key or a token.
 */
export function standInTransmitter(auth: Pick<Auth, 'url'>, holdMs = 500) {
  const base = `${auth.url}/stand-in-ssf`
  const state = { created: 0, deleted: 0, polls: 0, failing: false }
  const answer = (status: number, body?: unknown) =>
    new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
  const fetchImpl: FetchLike = async (input, init) => {
    const url = String(input)
    if (state.failing && url.startsWith(auth.url)) throw new TypeError('fetch failed (stand-in: the service is down)')
    if (url === `${auth.url}/.well-known/ssf-configuration`) {
      return answer(200, {
        issuer: auth.url,
        jwks_uri: `${auth.url}/.well-known/jwks.json`,
        configuration_endpoint: `${base}/streams`,
        delivery_methods_supported: ['urn:ietf:rfc:8936']
      })
    }
    if (url.startsWith(`${base}/streams`)) {
      if (init?.method === 'POST') {
        state.created++
        return answer(201, { stream_id: `stream-${state.created}`, events_delivered: [SESSION_REVOKED], delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: `${base}/poll/stream-${state.created}` } })
      }
      if (init?.method === 'DELETE') {
        state.deleted++
        return answer(204)
      }
    }
    if (url.startsWith(`${base}/poll/`)) {
      state.polls++
      const body = JSON.parse(String(init?.body ?? '{}'))
      if (!body.returnImmediately) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, holdMs)
          init?.signal?.addEventListener('abort', () => {
            clearTimeout(timer)
            reject(new DOMException('aborted', 'AbortError'))
          })
        })
      }
      if (state.failing) throw new TypeError('fetch failed (stand-in: the service is down)')
      return answer(200, { sets: {}, moreAvailable: false })
    }
    return fetch(input, init)
  }
  return { fetch: fetchImpl, state }
}

/** Polls `check` every 20 ms until it returns true or `timeoutMs` passes; returns the time taken. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now()
  while (Date.now() - started < timeoutMs) {
    if (await check()) return Date.now() - started
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`)
}

/**
 * For a failure's report, on PostgreSQL (TEST_DATABASE_URL): the event horizon, the transactions
 * with an xid (oldest first, in every database: the service's own hold it back) and the newest
 * security events.
 */
export async function horizonReport(): Promise<unknown> {
  const url = process.env.TEST_DATABASE_URL
  if (!url) return 'PGlite: no report'
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const holders = await client.query(HORIZON_HOLDERS_QUERY)
    const horizon = await client.query(HORIZON_QUERY)
    const events = await client.query(`
      select id::text, txid::text, event_type, session_id, occurred_at from security_events order by id desc limit 5`)
    return { ...horizon.rows[0], holders: holders.rows, events: events.rows }
  } finally {
    await client.end()
  }
}

/** The error a promise rejects with (fails if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<{ code?: string, statusCode?: number, message: string }> {
  try {
    await promise
  } catch (error) {
    return error as { code?: string, statusCode?: number, message: string }
  }
  throw new Error('expected a rejection')
}

/**
 * A TCP front on 127.0.0.1 whose target can change: the issuer URL of auth instances that come
 * and go (a restart with a new key), and a connection that can be cut or left hanging.
 */
export interface Front {
  readonly url: string
  readonly port: number
  /** Where new connections go; null: accepted and never answered (a silent network). */
  target: number | null
  /** Destroys every open connection (the next ones are accepted as usual). */
  cutConnections(): void
  /** Open connections stop carrying anything either way, without closing: a silent partition. */
  freeze(): void
  close(): Promise<void>
}

export async function startFront(t: Test): Promise<Front> {
  const sockets = new Set<Socket>()
  const pairs = new Set<[Socket, Socket]>()
  const front = { target: null as number | null }
  const server: Server = createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => {})
    if (front.target === null) return
    const upstream = connect(front.target, '127.0.0.1')
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    sockets.add(upstream)
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => {
      sockets.delete(upstream)
      pairs.delete(pair)
      client.destroy()
    })
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as { port: number }).port
  const cutConnections = () => {
    for (const socket of sockets) socket.destroy()
  }
  const freeze = () => {
    front.target = null
    for (const [client, upstream] of pairs) {
      client.unpipe(upstream)
      upstream.unpipe(client)
      // Read and drop: nothing reaches the other side, and neither side sees a close.
      client.on('data', () => {})
      upstream.on('data', () => {})
    }
  }
  const close = async () => {
    cutConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.teardown(close)
  return Object.assign(front, { url: `http://127.0.0.1:${port}`, port, cutConnections, freeze, close })
}
