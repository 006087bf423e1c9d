import { createPrivateKey, randomUUID, sign, type KeyObject } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import pg from 'pg'
import type { DestinationStream } from 'pino'
import type { Test } from 'tap'
import { API_PREFIX, buildApp, type App } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { pgliteDirFor } from '../src/db/database.js'
import { loggerOptions } from '../src/logging.js'
import { generateSigningKeyPem } from '../src/auth/keys.js'
import { generateClientSecret, hashClientSecret } from '../src/auth/service-clients.js'
import { copyPgliteTemplate } from './support/pglite-template.js'

export { API_PREFIX }

/** A clock the tests move by hand: token expiry and the grace window without sleeping. */
export class TestClock {
  private offsetMs = 0
  now = (): Date => new Date(Date.now() + this.offsetMs)
  advance(seconds: number): void {
    this.offsetMs += seconds * 1000
  }
}

export interface TestContext {
  app: App
  clock: TestClock
  /** The PEM of the key that signs this app's tokens, for forging variants of them. */
  privateKeyPem: string
  /** Whether the suite runs on PostgreSQL (TEST_DATABASE_URL) rather than PGlite. */
  onPostgres: boolean
  /** The app's DATA_DIR (its PGlite database is pgliteDirFor(dataDir)) and DATABASE_URL, if any. */
  dataDir: string
  databaseUrl: string | undefined
}

export interface TestAppOptions {
  env?: Record<string, string>
  /** Capture the app's log lines (the production logger configuration) here. */
  logStream?: DestinationStream
  /**
   * On PostgreSQL, run on a database of this test's own instead of the shared one. For tests
   * that move the clock and run the clean-up: it deletes every expired row in the database,
   * including the sessions and audit events of test files running at the same time.
   */
  ownDatabase?: boolean
  /** Machine clients, written to a SERVICE_CLIENTS_FILE the app reads at start-up as in production. */
  clients?: readonly TestClient[]
}

/** A machine client of a test: its id, its secret (the file holds only the hash) and its scopes. */
export interface TestClient {
  readonly clientId: string
  readonly secret: string
  readonly scope: string
}

/** A new machine client with a fresh secret, as `npm run client -- create` makes one. */
export function testClient(scope: string, clientId = `client-${randomUUID().slice(0, 8)}`): TestClient {
  return { clientId, secret: generateClientSecret(), scope }
}

/** The SERVICE_CLIENTS_FILE entry of a test client. */
export function clientEntry(client: TestClient) {
  return { client_id: client.clientId, client_secret_hash: hashClientSecret(client.secret), scope: client.scope }
}

/** `Authorization: Basic` with the client's id and secret (client_secret_basic). */
export function basicAuth(client: Pick<TestClient, 'clientId' | 'secret'>): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.secret}`).toString('base64')}` }
}

/** A form body (application/x-www-form-urlencoded) for app.inject. */
export function form(fields: Record<string, string>) {
  return { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(fields).toString() }
}

/** A machine token for `client` from POST /token (all its scopes unless `scope` says). */
export async function machineToken(app: App, client: TestClient, scope?: string): Promise<string> {
  const body = form({ grant_type: 'client_credentials', ...(scope === undefined ? {} : { scope }) })
  const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/token`, payload: body.payload, headers: { ...body.headers, ...basicAuth(client) } })
  if (res.statusCode !== 200) throw new Error(`token failed: ${res.statusCode} ${res.body}`)
  return res.json().access_token
}

/** POST /introspect of `token`, authenticated by the client's Basic credentials. */
export function introspectWith(app: App, client: TestClient, token: string, hint?: string) {
  const body = form({ token, ...(hint === undefined ? {} : { token_type_hint: hint }) })
  return app.inject({ method: 'POST', url: `${API_PREFIX}/introspect`, payload: body.payload, headers: { ...body.headers, ...basicAuth(client) } })
}

/**
 * Boots the whole app on a real database: an in-memory PGlite by default, PostgreSQL when
 * TEST_DATABASE_URL is set (tests use unique emails, so files may share that database).
 * Keys are generated in-process. Closed when the test ends.
 */
export async function buildTestApp(t: Test, options: TestAppOptions = {}): Promise<TestContext> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'auth-test-'))
  const privateKeyPem = generateSigningKeyPem('EdDSA')
  const sharedDatabaseUrl = process.env.TEST_DATABASE_URL
  // Rate-limit counts live in the database (rate_limit_counts), keyed by address and account: a
  // test that turns the limits on counts alone, not with every file running beside it.
  const ownDatabase = options.ownDatabase || options.env?.RATE_LIMIT === 'on'
  const databaseUrl = sharedDatabaseUrl && ownDatabase ? await createOwnDatabase(t, sharedDatabaseUrl) : sharedDatabaseUrl
  const clientsFile = path.join(dataDir, 'clients.json')
  if (options.clients) writeFileSync(clientsFile, JSON.stringify({ clients: options.clients.map(clientEntry) }))
  const config = loadConfig({
    ...(options.clients ? { SERVICE_CLIENTS_FILE: clientsFile } : {}),
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    RATE_LIMIT: 'off',
    // Tests fire concurrent logins for other reasons, two files at a time; the bound has its own
    // test (test/routes/password-hashing-bound.test.ts), which sets it.
    PASSWORD_HASH_CONCURRENCY: '4',
    PASSWORD_HASH_QUEUE: '1000',
    // Two test files keep both cores busy: hashing at SCHED_IDLE or nice 19 would wait behind
    // them for seconds (test/unit/password-threads.test.ts checks the priority itself).
    PASSWORD_HASH_POLICY: 'normal',
    PASSWORD_HASH_NICE: '0',
    SESSION_CLEANUP_INTERVAL: '0',
    JWT_PRIVATE_KEY: privateKeyPem,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...options.env
  })
  const clock = new TestClock()
  // On PGlite, a copy of the migrated template (test/support/pglite-template.ts) instead of initdb.
  const pgliteDir = pgliteDirFor(dataDir)
  if (!databaseUrl) await copyPgliteTemplate(pgliteDir)
  const app = await buildApp(config, {
    now: clock.now,
    pgliteDir,
    migrate: true,
    ...(options.logStream ? { logger: loggerOptions(config, options.logStream) } : {})
  })
  t.teardown(async () => {
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return { app, clock, privateKeyPem, onPostgres: Boolean(databaseUrl), dataDir, databaseUrl }
}

/** A log destination (TestAppOptions.logStream) that keeps every line: parsed in `lines`, as written in `raw`. */
export function captureLog<Line = Record<string, any>>(): { stream: Writable, lines: Line[], raw: string[], text(): string } {
  const lines: Line[] = []
  const raw: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line)
        lines.push(JSON.parse(line) as Line)
      }
      done()
    }
  })
  return { stream, lines, raw, text: () => raw.join('\n') }
}

/**
 * Creates an empty database next to the one `sharedUrl` names (the app migrates it) and drops
 * it when the test ends, after the app's teardown (tap runs teardowns last-registered first).
 */
async function createOwnDatabase(t: Test, sharedUrl: string): Promise<string> {
  const name = `auth_test_own_${randomUUID().replaceAll('-', '')}`
  await adminQuery(sharedUrl, `create database ${name}`)
  t.teardown(() => adminQuery(sharedUrl, `drop database if exists ${name} with (force)`))
  const url = new URL(sharedUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * Runs one statement on a short-lived connection of its own (on PostgreSQL, as the suite's role:
 * for database-level settings, run it on TEST_DATABASE_URL, not on the database it changes).
 */
export async function adminQuery(url: string, statement: string, values: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query(statement, values)).rows
  } finally {
    await client.end()
  }
}

export function uniqueEmail(label = 'user'): string {
  return `${label}-${randomUUID()}@example.com`
}

export const PASSWORD = 'correct horse battery staple'

export interface TokenPairBody {
  user: { id: string, email: string, display_name: string | null, email_verified: boolean, created_at: string }
  access_token: string
  refresh_token: string
  token_type: 'Bearer'
  expires_in: number
}

export async function registerUser(app: App, email = uniqueEmail(), password = PASSWORD): Promise<TokenPairBody> {
  const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/register`, payload: { email, password } })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

export async function loginUser(app: App, email: string, password = PASSWORD): Promise<TokenPairBody> {
  const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

export function refresh(app: App, refreshToken: string) {
  return app.inject({ method: 'POST', url: `${API_PREFIX}/refresh`, payload: { refresh_token: refreshToken } })
}

export function me(app: App, accessToken: string) {
  return app.inject({ method: 'GET', url: `${API_PREFIX}/me`, headers: bearer(accessToken) })
}

export async function countSessions(app: App, userId: string): Promise<number> {
  const row = await app.db
    .selectFrom('user_sessions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

/** How many accounts exist with this (lower-cased) email. */
export async function countUsers(app: App, email: string): Promise<number> {
  const row = await app.db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('email', '=', email.toLowerCase())
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

/** Records the kind of every token the app verifies from now on (the verifier is one object). */
export function recordVerifications(app: App): string[] {
  const kinds: string[] = []
  const verify = app.tokenVerifier.verify.bind(app.tokenVerifier)
  app.tokenVerifier.verify = ((token, kind) => {
    kinds.push(kind)
    return verify(token, kind)
  }) as typeof app.tokenVerifier.verify
  return kinds
}

/** Decodes a JWT's header and payload without verifying it. */
export function decodeJwt(token: string): { header: Record<string, any>, payload: Record<string, any> } {
  const [header, payload] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()))
  return { header, payload }
}

/**
 * Signs exactly this header and payload (nothing added or dropped) with an Ed25519 or P-256
 * private key: with the app's own key, a genuine token but for what the test changes.
 */
export function signWith(privateKeyPem: string | KeyObject, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const encode = (part: unknown) => Buffer.from(JSON.stringify(part)).toString('base64url')
  const input = `${encode(header)}.${encode(payload)}`
  const key = typeof privateKeyPem === 'string' ? createPrivateKey(privateKeyPem) : privateKeyPem
  const signature = key.asymmetricKeyType === 'ec'
    ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : sign(null, Buffer.from(input), key)
  return `${input}.${signature.toString('base64url')}`
}

/** The standard Fastify error body, as docs/api.md, "Conventions", requires for every error. */
export function errorShape(statusCode: number) {
  return { statusCode, error: String, message: String }
}
