// Shared pieces of the property-based (fast-check) suite under test/fuzz/: the fixture every file
// builds once, the database snapshot behind "a 4xx changes nothing", the checks every response
// must pass, and the arbitraries. Not a test file itself (tap runs *.test.ts only).
//
// Reproducing a failure: fast-check prints `seed` and `path`; rerun the file with FUZZ_SEED=<seed>
// (and FUZZ_PATH=<path> to jump straight to the shrunk case). FUZZ_SCALE multiplies every numRuns;
// FUZZ_NO_SHRINK=1 and FUZZ_VERBOSE=1 as described in params().
import assert from 'node:assert/strict'
import { createPrivateKey, randomBytes, sign } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import fc from 'fast-check'
import type { LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import type { App } from '../../src/app.js'
import {
  API_PREFIX,
  PASSWORD,
  buildTestApp,
  loginUser,
  registerUser,
  type TestAppOptions,
  type TokenPairBody
} from '../helper.js'

export type Response = LightMyRequestResponse
export type Json = Record<string, unknown>

// ---------------------------------------------------------------------------------------------
// fast-check parameters

const SCALE = Number(process.env.FUZZ_SCALE ?? 1)

/** fc.assert parameters: `runs` scaled by FUZZ_SCALE, and FUZZ_SEED / FUZZ_PATH to replay a failure. */
export function params(runs: number): fc.Parameters<unknown> {
  return {
    numRuns: Math.max(1, Math.round(runs * SCALE)),
    ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
    ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
    // After a failure that changed state (a session deleted by mistake), shrinking replays against
    // that state and may report a follow-on error; FUZZ_NO_SHRINK=1 reports the first failure as is.
    ...(process.env.FUZZ_NO_SHRINK ? { endOnFailure: true } : {}),
    ...(process.env.FUZZ_VERBOSE ? { verbose: 2 as const } : {})
  }
}

// ---------------------------------------------------------------------------------------------
// The fixture: one app per file, its users and tokens created once

export interface FuzzFixture {
  app: App
  privateKeyPem: string
  onPostgres: boolean
  /** Every account this file creates has an email under this domain (see dbState). */
  domain: string
  /** A user with two sessions: `pair` (from registration) and `second` (a login). */
  victim: { pair: TokenPairBody, second: TokenPairBody }
  /** Another user, for "not yours" cases. */
  other: TokenPairBody
  /** Users whose sessions and account rows dbState compares row by row. */
  watched: Set<string>
  /** Every genuine token this file has been given: none may ever appear in an error body. */
  genuineTokens: Set<string>
  /** Registers a user under `domain`, watched, its tokens remembered. */
  newUser(label?: string): Promise<TokenPairBody>
  /** A new session (login) of an existing user, its tokens remembered. */
  newSession(email: string): Promise<TokenPairBody>
}

export async function fuzzFixture(t: Test, options: TestAppOptions = {}): Promise<FuzzFixture> {
  const { app, privateKeyPem, onPostgres } = await buildTestApp(t, options)
  const domain = `fuzz-${randomBytes(5).toString('hex')}.example.com`
  const watched = new Set<string>()
  const genuineTokens = new Set<string>()
  const remember = (pair: TokenPairBody) => {
    genuineTokens.add(pair.access_token)
    genuineTokens.add(pair.refresh_token)
    return pair
  }
  const newUser = async (label = 'user') => {
    const pair = remember(await registerUser(app, `${label}-${randomBytes(8).toString('hex')}@${domain}`))
    watched.add(pair.user.id)
    return pair
  }
  const newSession = async (email: string) => remember(await loginUser(app, email))
  const pair = await newUser('victim')
  const second = await newSession(pair.user.email)
  const other = await newUser('other')
  return { app, privateKeyPem, onPostgres, domain, victim: { pair, second }, other, watched, genuineTokens, newUser, newSession }
}

// ---------------------------------------------------------------------------------------------
// "A 4xx never changes the database"

export interface DbState {
  users: number
  sessions: number
  watchedSessions: string[]
  watchedUsers: string[]
}

/**
 * What a rejected request must leave exactly as it was: the number of rows in `users` and
 * `user_sessions`, and, row by row, the sessions (refresh_jti_hash, previous_jti_hash, rotated_at,
 * last_used_at, expires_at) and account rows (email, password_hash, display_name, updated_at) of
 * the watched users.
 *
 * `auth_events` is deliberately left out: it is the append-only audit trail, and a failed login
 * (401) or a refused password change is *supposed* to append a row there. That records the
 * attempt; it changes no account and no session.
 *
 * Row counts are of the whole tables on PGlite (each file has its own in-memory database). On
 * PostgreSQL the database is shared with test files running in parallel, so the counts are of
 * this file's accounts (emails under `fixture.domain`; every account a fuzzed request could
 * validly create here uses that domain too) and of their sessions.
 */
export async function dbState(f: FuzzFixture): Promise<DbState> {
  const db = f.app.db
  const scope = `%@${f.domain}`
  let users = db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n'))
  let sessions = db
    .selectFrom('user_sessions')
    .innerJoin('users', 'users.id', 'user_sessions.user_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
  if (f.onPostgres) {
    users = users.where('email', 'like', scope)
    sessions = sessions.where('users.email', 'like', scope)
  }
  const ids = [...f.watched]
  const [u, s, watchedSessions, watchedUsers] = await Promise.all([
    users.executeTakeFirstOrThrow(),
    sessions.executeTakeFirstOrThrow(),
    db
      .selectFrom('user_sessions')
      .select(['id', 'user_id', 'refresh_jti_hash', 'previous_jti_hash', 'rotated_at', 'last_used_at', 'expires_at'])
      .where('user_id', 'in', ids)
      .orderBy('id')
      .execute(),
    db
      .selectFrom('users')
      .select(['id', 'email', 'password_hash', 'display_name', 'updated_at'])
      .where('id', 'in', ids)
      .orderBy('id')
      .execute()
  ])
  return {
    users: Number(u.n),
    sessions: Number(s.n),
    watchedSessions: watchedSessions.map((row) => JSON.stringify(row)),
    watchedUsers: watchedUsers.map((row) => JSON.stringify(row))
  }
}

// ---------------------------------------------------------------------------------------------
// What every response must satisfy

/** Marks generated secrets (passwords, tokens): an error body containing it echoed one. */
export const SECRET_MARK = `Zq${randomBytes(6).toString('hex')}Xk`

const ERROR_KEYS = new Set(['statusCode', 'error', 'message', 'code'])
const STACK = /\n\s+at\s|\bat\s+\S+\s+\(|node_modules|\/src\/|file:\/\/|\.[cm]?[jt]s:\d+/
const SQL = /syntax error|relation "|violates|duplicate key|invalid input|invalid byte sequence|unsupported unicode|SQLSTATE|\bselect\b[\s\S]*\bfrom\b|\binsert\s+into\b|\bdelete\s+from\b|\bupdate\b[\s\S]*\bset\b|user_sessions|auth_events|password_hash|refresh_jti_hash/i
/** base64url of a JSON object's start (`{"`), anywhere in a body: a token or a part of one. */
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{8,}/

export type Challenge = 'invalid_token' | 'bare' | 'either'

export interface Expectation {
  /** Exactly these statuses (else: anything below 500). */
  status?: number | readonly number[]
  /** Strings that must not appear in an error body (besides SECRET_MARK, PASSWORD, genuine tokens). */
  secrets?: readonly unknown[]
  /** The route takes a Bearer token: every 401 carries this WWW-Authenticate challenge. */
  challenge?: Challenge
  /** The database must not change even on success (e.g. /revoke of a token that is not genuine). */
  unchangedAlways?: boolean
}

function describe(res: Response): string {
  return `${res.statusCode} ${JSON.stringify(res.headers)} ${res.body.slice(0, 500)}`
}

/** How often each status came back, printed after each property to show what the runs reached. */
const statuses = new Map<number, number>()

/** The tally since the last call, as `400×120 401×30`, and a fresh one started. */
export function statusTally(): string {
  const text = [...statuses].sort(([a], [b]) => a - b).map(([status, n]) => `${status}×${n}`).join(' ')
  statuses.clear()
  return `statuses: ${text}`
}

/** Properties (a) and (b): never a 5xx; an error body has exactly the shape of docs/api.md, "Conventions" and leaks nothing. */
export function checkResponse(f: FuzzFixture, res: Response, expect: Expectation = {}): void {
  statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  assert.ok(res.statusCode < 500, `never a 5xx: ${describe(res)}`)
  if (expect.status !== undefined) {
    const allowed = typeof expect.status === 'number' ? [expect.status] : expect.status
    assert.ok(allowed.includes(res.statusCode), `status ${res.statusCode} not in ${allowed.join(', ')}: ${describe(res)}`)
  }
  if (res.statusCode >= 400) checkErrorBody(f, res, expect.secrets ?? [])
  if (res.statusCode === 401 && expect.challenge) {
    const challenge = res.headers['www-authenticate']
    const wanted = {
      invalid_token: ['Bearer error="invalid_token"'],
      bare: ['Bearer'],
      either: ['Bearer', 'Bearer error="invalid_token"']
    }[expect.challenge]
    assert.ok(typeof challenge === 'string' && wanted.includes(challenge), `WWW-Authenticate ${String(challenge)}, wanted ${wanted.join(' or ')}: ${describe(res)}`)
  }
}

export function checkErrorBody(f: FuzzFixture, res: Response, secrets: readonly unknown[]): void {
  assert.match(String(res.headers['content-type']), /^application\/json\b/, `error body is JSON: ${describe(res)}`)
  let body: unknown
  assert.doesNotThrow(() => {
    body = JSON.parse(res.body)
  }, `error body parses: ${describe(res)}`)
  assert.ok(body !== null && typeof body === 'object' && !Array.isArray(body), `error body is an object: ${describe(res)}`)
  const error = body as Record<string, unknown>
  const extra = Object.keys(error).filter((key) => !ERROR_KEYS.has(key))
  assert.deepEqual(extra, [], `error body has only statusCode, error, message, code: ${describe(res)}`)
  assert.equal(error.statusCode, res.statusCode, `statusCode matches the status: ${describe(res)}`)
  assert.equal(typeof error.error, 'string', `error is a string: ${describe(res)}`)
  assert.equal(error.error, STATUS_CODES[res.statusCode], `error is the reason phrase of the status: ${describe(res)}`)
  assert.equal(typeof error.message, 'string', `message is a string: ${describe(res)}`)
  assert.ok(error.code === undefined || typeof error.code === 'string', `code, if any, is a string: ${describe(res)}`)

  // Fastify's not-found and bad-URL messages quote the request path (never the query string);
  // the path is the fuzzer's own input here, so only the secrets are looked for in them.
  const quotesPath =
    (res.statusCode === 404 && /^Route [A-Z]+ \S* not found$/s.test(error.message as string)) ||
    error.code === 'FST_ERR_BAD_URL' ||
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
  if (!quotesPath) {
    assert.doesNotMatch(res.body, STACK, `no stack trace or source path: ${describe(res)}`)
    assert.doesNotMatch(res.body, SQL, `no SQL: ${describe(res)}`)
  }
  assert.doesNotMatch(res.body, JWT_LIKE, `no token: ${describe(res)}`)
  assert.ok(!res.body.includes(SECRET_MARK), `no generated secret echoed: ${describe(res)}`)
  assert.ok(!res.body.includes(PASSWORD), `no password echoed: ${describe(res)}`)
  for (const token of f.genuineTokens) assert.ok(!res.body.includes(token), `no genuine token echoed: ${describe(res)}`)
  for (const secret of secrets) {
    // Short strings (a one-letter password) may occur in any English message by chance.
    if (typeof secret === 'string' && secret.length >= 10) {
      assert.ok(!res.body.includes(secret), `secret ${JSON.stringify(secret.slice(0, 40))} not echoed: ${describe(res)}`)
    }
  }
}

/**
 * Sends one fuzzed request and checks properties (a), (b) and (c): the response, and for a 4xx
 * (or whenever `unchangedAlways`) that the database is exactly as before.
 */
export async function probe(f: FuzzFixture, send: () => Promise<Response>, expect: Expectation = {}): Promise<Response> {
  const before = await dbState(f)
  const res = await send()
  checkResponse(f, res, expect)
  if ((res.statusCode >= 400 && res.statusCode < 500) || expect.unchangedAlways) {
    assert.deepEqual(await dbState(f), before, `the database did not change: ${describe(res)}`)
  }
  return res
}

/**
 * Runs several requests that must all leave the database alone (each response checked with
 * checkResponse inside `fn`), comparing the database once around all of them.
 */
export async function unchangedAcross(f: FuzzFixture, fn: () => Promise<void>): Promise<void> {
  const before = await dbState(f)
  await fn()
  assert.deepEqual(await dbState(f), before, 'the database did not change')
}

// ---------------------------------------------------------------------------------------------
// Requests

export const JSON_TYPE = { 'content-type': 'application/json' }

export const url = (path: string) => `${API_PREFIX}${path}`

/** The string values under secret-ish keys of a body, for the echo check. */
export function secretsOf(body: unknown): string[] {
  const found: string[] = []
  const visit = (value: unknown, key?: string) => {
    if (typeof value === 'string') {
      if (key && /password|token/i.test(key)) found.push(value)
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) visit(v, k)
    }
  }
  visit(body)
  return found
}

/** Percent-encodes every byte of the UTF-8 of `s` but the unreserved ones (lone surrogates become U+FFFD). */
export function percentEncode(s: string): string {
  return [...Buffer.from(s)].map((byte) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)).join('')
}

/** Parses a body text if it is JSON, for deciding what a run sent. */
export function parsed(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Signing exactly the header and payload given (fast-jwt's signer adds `typ: "JWT"` and refuses
// an `exp` that is not an integer, which are exactly the variants this suite needs).

export const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** `header.payload.signature`, signed with the app's own Ed25519 key. */
export function rawSign(privateKeyPem: string, header: unknown, payload: unknown): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  return `${input}.${sign(null, Buffer.from(input), createPrivateKey(privateKeyPem)).toString('base64url')}`
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** Characters a real HTTP/1.1 server lets through in a header value: HTAB, VCHAR, SP, obs-text. */
const HEADER_CHARS = ['\t', ...Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)), ...Array.from({ length: 0x80 }, (_, i) => String.fromCharCode(0x80 + i))]
export const headerChar = fc.constantFrom(...HEADER_CHARS)
export const headerValue = (maxLength = 200) => fc.string({ unit: headerChar, maxLength })

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
export const base64urlString = (maxLength = 120) => fc.string({ unit: fc.constantFrom(...BASE64URL), maxLength })

/** Every kind of string: ASCII, any grapheme, any code point (lone surrogates too), control characters. */
export const anyString = (maxLength = 64) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: fc.constantFrom('\u0000', '\u0001', '\u001f', '\u007f', '\u2028', '\ufeff', '\ud800', '\udfff', '\\', '"', "'", '%', '$', '{'), maxLength }),
    fc.constantFrom('', ' ', 'null', 'undefined', 'true', '0', '-1', 'NaN', '__proto__', 'constructor', "' OR '1'='1", '1; DROP TABLE users;--', '${7*7}', '{{7*7}}', '%00', '\u0000')
  )

/**
 * A long string whose JSON encoding is about `bytes` long (up to `maxBytes`): several of them
 * still fit in one body under the 1 MiB limit.
 */
export const hugeString = (maxBytes = 300_000) =>
  fc
    .record({ unit: fc.oneof(fc.string({ minLength: 1, maxLength: 3 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 2 })), bytes: fc.integer({ min: 2_000, max: maxBytes }) })
    .map(({ unit, bytes }) => unit.repeat(Math.max(1, Math.floor(bytes / Buffer.byteLength(JSON.stringify(unit))))))

/** A string meant as a password or token: it carries SECRET_MARK, so any echo of it is caught. */
export const markedSecret = fc.tuple(anyString(20), anyString(20)).map(([a, b]) => `${a}${SECRET_MARK}${b}`)

/** Any JSON value, strings drawn from every alphabet. */
export const jsonValue = fc.jsonValue({ maxDepth: 3, depthSize: 'small' })

/** A value of any JSON type, weighted towards the wrong-but-plausible ones. */
export const weirdValue = fc.oneof(
  { arbitrary: anyString(), weight: 4 },
  { arbitrary: markedSecret, weight: 2 },
  { arbitrary: jsonValue, weight: 3 },
  { arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 1e308, -1, 2 ** 53)), weight: 1 },
  { arbitrary: fc.boolean(), weight: 1 },
  { arbitrary: fc.constant(null), weight: 1 },
  { arbitrary: fc.array(jsonValue, { maxLength: 3 }), weight: 1 },
  { arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 3 }), weight: 1 },
  { arbitrary: hugeString(), weight: 1 }
)

/** Keys that have meant trouble for JavaScript objects. */
export const pollutionKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__')

/** A JSON object text from key/value pairs (duplicates and `__proto__` kept: written, not built). */
export function objectText(entries: ReadonlyArray<readonly [string, unknown]>): string {
  return `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value) ?? 'null'}`).join(',')}}`
}

/**
 * An object with (some of) a route's keys, each with a value of any type, and sometimes extra keys
 * (unknown ones, `__proto__`, `constructor`), as JSON text.
 */
export function objectWithKeys(keys: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<string> {
  const wanted = Object.entries(keys).map(([key, plausible]) =>
    fc.option(fc.tuple(fc.constant(key), fc.oneof({ arbitrary: plausible, weight: 3 }, { arbitrary: weirdValue, weight: 2 })), { freq: 4 })
  )
  const extra = fc.array(fc.tuple(fc.oneof(pollutionKey, fc.string({ maxLength: 12 }), fc.constantFrom(...Object.keys(keys))), weirdValue), { maxLength: 2 })
  return fc
    .tuple(fc.tuple(...wanted), fc.oneof({ arbitrary: fc.constant([]), weight: 3 }, { arbitrary: extra, weight: 1 }))
    .map(([present, more]) => objectText([...present.filter((entry) => entry !== null), ...more] as Array<[string, unknown]>))
}

/** An object with all of a route's keys, each with a plausible value (which may still be invalid). */
export function plausibleObject(keys: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<string> {
  const entries = Object.entries(keys).map(([key, value]) => fc.tuple(fc.constant(key), value))
  return fc.tuple(...entries).map((present) => objectText(present as Array<[string, unknown]>))
}

/** Prototype-pollution bodies: `__proto__` / `constructor.prototype` at the top or nested in a value. */
export function pollutedBody(keys: readonly string[]): fc.Arbitrary<string> {
  const payload = fc.constantFrom({ polluted: true }, { isAdmin: true, email: 'x' }, { toString: 1 })
  const poison = fc.oneof(
    payload.map((value) => `{"__proto__":${JSON.stringify(value)}}`),
    payload.map((value) => `{"constructor":{"prototype":${JSON.stringify(value)}}}`)
  )
  return fc.oneof(
    // At the top level, among the route's own keys.
    fc.tuple(poison, fc.subarray([...keys]), anyString(20)).map(([text, present, value]) => {
      const inner = text.slice(1, -1)
      const own = present.map((key) => `${JSON.stringify(key)}:${JSON.stringify(value)}`)
      return `{${[...own, inner].join(',')}}`
    }),
    // As the value of one of them.
    fc.tuple(poison, fc.constantFrom(...keys)).map(([text, key]) => `{${JSON.stringify(key)}:${text}}`)
  )
}

/** A random JSON document of any type (not only objects), as text. */
export const anyJsonText = fc.oneof(fc.json({ maxDepth: 3 }), jsonValue.map((value) => JSON.stringify(value)))

/** Something email-shaped: valid ones under this file's domain, the victim's in another case, or junk. */
export function emailLike(f: FuzzFixture): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.emailAddress(),
    fc.string({ unit: fc.constantFrom(...'abcxyz019.+-_'), minLength: 1, maxLength: 30 }).map((local) => `${local}@${f.domain}`),
    fc.mixedCase(fc.constant(f.victim.pair.user.email)),
    fc.tuple(anyString(10), anyString(10)).map(([a, b]) => `${a}@${b}`),
    hugeString(5_000).map((s) => `${s}@${f.domain}`)
  )
}

/**
 * Runs a property that once found a bug (now fixed) as one assertion, printing the counterexample
 * if it ever fails again.
 */
export async function regression(t: Test, reason: string, property: fc.IAsyncProperty<any>, parameters: fc.Parameters<unknown>): Promise<void> {
  const details = await fc.check(property, parameters)
  if (details.failed) t.comment(fc.defaultReportMessage(details) ?? 'failed')
  t.notOk(details.failed, reason)
  statusTally()
}

export function assertPrototypesClean(): void {
  const probeObject = {} as Record<string, unknown>
  assert.equal(probeObject.polluted, undefined, 'Object.prototype was not polluted')
  assert.equal(probeObject.isAdmin, undefined, 'Object.prototype was not polluted')
  assert.deepEqual(Object.keys(Object.prototype), [], 'Object.prototype has no enumerable keys')
}
