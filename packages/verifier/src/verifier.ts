// createVerifier(): offline verification of the issuer's RFC 9068 access tokens, plus what an
// offline verifier cannot see by itself, the sessions that have ended, learnt from an OpenID Shared
// Signals (SSF 1.0) poll stream of its own (RFC 8936) carrying CAEP session-revoked events.
//
// Start: the issuer's RFC 8414 metadata and its SSF configuration (each `issuer` compared byte for
// byte), a machine token by client credentials, a new poll stream, then a loop that long-polls it,
// acknowledging each SET in the next request once it has been verified and recorded. verify() is a
// signature check, a claim check and a map lookup: no call to the issuer per request, except with
// `fallback: 'introspect'` while the stream is stale.
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { VerifierError } from './errors.js'
import { canonicalId, RevocationStore } from './revocations.js'

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
/** RFC 8936 poll delivery. */
export const POLL_DELIVERY = 'urn:ietf:rfc:8936'
/** The scopes the verifier's machine client needs (plus `introspect` for the fallback). */
export const STREAM_SCOPE = 'ssf.read ssf.manage'

/** The claims of an accepted access token (RFC 9068 plus the issuer's `sid`). */
export interface AccessTokenClaims extends JWTPayload {
  iss: string
  aud: string | string[]
  /** The user. */
  sub: string
  /** The session; every token of a session dies with it. */
  sid: string
  /** The client the user logged in with. */
  client_id: string
  jti: string
  iat: number
  exp: number
  scope?: string
}

/** pino-compatible: `logger.warn({ ...details }, 'message')`. Fastify's `app.log` fits. */
export interface VerifierLogger {
  error(details: object, message?: string): void
  warn(details: object, message?: string): void
  info?(details: object, message?: string): void
  debug?(details: object, message?: string): void
}

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>

export interface VerifierOptions {
  /** The issuer URL, exactly as the tokens' `iss` and the metadata's `issuer` write it. */
  issuer: string
  /** The audience this service accepts (the auth service's JWT_AUDIENCE); an array: any of them. */
  audience: string | string[]
  /** A machine client of the issuer with the scopes `ssf.read ssf.manage` (and `introspect` for the fallback). */
  clientId: string
  clientSecret: string
  /** Fail closed once the stream has not answered for this long (ms). Default 30 000. */
  staleAfterMs?: number
  /**
   * While stale: `reject` (default) every token with `revocation_stale` (503), or `introspect` each
   * token at the issuer's introspection endpoint and accept only `active: true`.
   */
  fallback?: 'reject' | 'introspect'
  /** The fetch to use (default: the global one). */
  fetch?: FetchLike
  /** Where the verifier reports stream failures and recoveries (default: console, warnings and errors only). */
  logger?: VerifierLogger
  /**
   * The longest an access token may live, in seconds: tokens older than this (by `iat`) are
   * refused, and a revoked session is remembered this long (plus the clock tolerance). At least
   * the issuer's ACCESS_TOKEN_TTL. Default 3600.
   */
  maxTokenAgeSec?: number
  /** Seconds of clock skew accepted on `exp`, `nbf` and `iat`. Default 5. */
  clockToleranceSec?: number
  /** The JWS algorithms accepted (always narrowed further by the `alg` of the JWKS keys). Default EdDSA, ES256. */
  algorithms?: string[]
  /** Most revocation entries kept (sessions and users). Default 100 000. */
  maxRevokedSessions?: number
  /** Longest wait for one long-poll answer (ms); above the issuer's long-poll wait. Default 45 000. */
  pollTimeoutMs?: number
  /** Timeout of every other request to the issuer (ms). Default 10 000. */
  requestTimeoutMs?: number
  /** ready() rejects if the first sync has not happened by then (ms); the verifier keeps trying. Default 30 000. */
  readyTimeoutMs?: number
  /** An unknown `kid` refetches the JWKS at most this often (ms). Default 30 000. */
  jwksCooldownMs?: number
  /** The JWKS is refetched in the background this often (ms), never on the request path. Default 300 000. */
  jwksRefreshMs?: number
  /** SETs asked for per poll. Default 100. */
  maxEvents?: number
}

export type VerifierState = 'starting' | 'ready' | 'stale' | 'failed' | 'closed'

export interface VerifierStatus {
  /** `ready`: the stream is current; `stale`: it has not answered within staleAfterMs. */
  readonly state: VerifierState
  readonly streamId: string | null
  /** When the stream last answered (or a long poll within its timeout was waiting), ms since the epoch. */
  readonly lastContactAt: number | null
  /** Revocation entries held. */
  readonly revokedSessions: number
  /** Entries dropped before their time because the map was full (tokens they could name go the stale way). */
  readonly evictedEarly: number
  /** SETs verified and acknowledged since start. */
  readonly eventsReceived: number
  /** Streams created (more than one: the issuer deleted one, a new one was made and backfilled). */
  readonly streamsCreated: number
  readonly lastError: string | null
}

export interface Verifier {
  /** Resolves once the stream is created and caught up; rejects on a configuration error or after readyTimeoutMs. */
  ready(): Promise<void>
  /** The claims of a valid, unrevoked access token; otherwise rejects with a VerifierError. */
  verify(token: string): Promise<AccessTokenClaims>
  /** Stops polling and deletes the stream. */
  close(): Promise<void>
  readonly status: VerifierStatus
}

interface Metadata {
  jwksUri: string
  tokenEndpoint: string
  introspectionEndpoint: string | undefined
  configurationEndpoint: string
  ssfJwksUri: string
}

interface Stream {
  id: string
  pollUrl: string
}

interface HttpAnswer {
  status: number
  headers: Headers
  body: unknown
}

type SetError = { err: string, description: string }

const DEFAULTS = {
  staleAfterMs: 30_000,
  maxTokenAgeSec: 3600,
  clockToleranceSec: 5,
  algorithms: ['EdDSA', 'ES256'],
  maxRevokedSessions: 100_000,
  pollTimeoutMs: 45_000,
  requestTimeoutMs: 10_000,
  readyTimeoutMs: 30_000,
  jwksCooldownMs: 30_000,
  jwksRefreshMs: 300_000,
  maxEvents: 100
} as const

const MAX_TOKEN_LENGTH = 16_384
const RETRY_MAX_MS = 5_000
const PRUNE_EVERY_MS = 60_000

const consoleLogger: VerifierLogger = {
  error: (details, message) => console.error(`[auth-verifier] ${message ?? ''}`, details),
  warn: (details, message) => console.warn(`[auth-verifier] ${message ?? ''}`, details)
}

/** An error of the loop that retrying will not fix while starting (after start everything is retried). */
class Permanent extends Error {
  override name = 'PermanentStartError'
}

/** A transient failure: retried with back-off. */
class Transient extends Error {
  override name = 'TransientError'
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0

function requireUrl(document: Record<string, unknown>, member: string, where: string): string {
  const value = document[member]
  if (!isText(value)) throw new Permanent(`${where} has no ${member}`)
  try {
    return new URL(value).href
  } catch {
    throw new Permanent(`${where}: ${member} is not a URL`)
  }
}

/** RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic. */
function basic(clientId: string, clientSecret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replaceAll('%20', '+')
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

/** Errors of fetching keys (not of the token): the token could not be checked, not found bad. */
function isKeyFetchFailure(error: unknown): boolean {
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) return true
  if (error instanceof joseErrors.JOSEError) return error.code === 'ERR_JOSE_GENERIC'
  return true
}

export function createVerifier(options: VerifierOptions): Verifier {
  return new SsfVerifier(options)
}

class SsfVerifier implements Verifier {
  private readonly issuer: string
  private readonly base: string
  private readonly audience: string | string[]
  private readonly clientId: string
  private readonly authorization: string
  private readonly fallback: 'reject' | 'introspect'
  private readonly fetch: FetchLike
  private readonly log: VerifierLogger
  private readonly settings: { [K in Exclude<keyof typeof DEFAULTS, 'algorithms'>]: number } & { algorithms: string[] }
  private readonly revocations: RevocationStore
  private readonly abort = new AbortController()
  private readonly timers: NodeJS.Timeout[] = []

  private meta: Metadata | undefined
  private accessKeys: (JWTVerifyGetKey & { coolingDown: boolean, reload(): Promise<void> }) | undefined
  private setKeys: (JWTVerifyGetKey & { coolingDown: boolean, reload(): Promise<void> }) | undefined
  private token: { value: string, renewAt: number } | undefined
  private stream: Stream | undefined
  private streamsCreated = 0

  /** jtis verified and recorded, acknowledged with the next poll. */
  private pendingAcks: string[] = []
  private pendingErrors: Record<string, SetError> = {}
  /** The last answer left nothing behind (moreAvailable false): the next poll may wait. */
  private caughtUp = false
  private lastAnswerAt = -Infinity
  /** A long poll that was waiting counts as contact up to its timeout; what past ones earned. */
  private creditedUntil = -Infinity
  private inFlight: { since: number, credit: boolean } | undefined

  private eventsReceived = 0
  private lastError: string | null = null
  private failures = 0
  private staleReported = false
  private started = false
  private failed: Error | undefined
  private closing = false
  private closed = false
  private closePromise: Promise<void> | undefined
  private readonly loopDone: Promise<void>
  private readonly readyPromise: Promise<void>
  private settleReady!: (error?: Error) => void
  private readonly introspections = new Map<string, Promise<AccessTokenClaims>>()

  constructor(options: VerifierOptions) {
    for (const member of ['issuer', 'clientId', 'clientSecret'] as const) {
      if (!isText(options[member])) throw new TypeError(`createVerifier: ${member} is required`)
    }
    const audiences = Array.isArray(options.audience) ? options.audience : [options.audience]
    if (audiences.length === 0 || !audiences.every(isText)) throw new TypeError('createVerifier: audience is required')
    if (options.fallback !== undefined && options.fallback !== 'reject' && options.fallback !== 'introspect') {
      throw new TypeError("createVerifier: fallback is 'reject' or 'introspect'")
    }
    this.issuer = options.issuer
    this.base = options.issuer.replace(/\/+$/, '')
    this.audience = options.audience
    this.clientId = options.clientId
    this.authorization = basic(options.clientId, options.clientSecret)
    this.fallback = options.fallback ?? 'reject'
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.log = options.logger ?? consoleLogger
    const pick = <K extends keyof typeof DEFAULTS>(key: K): number => {
      const value = (options as unknown as Record<string, unknown>)[key] ?? DEFAULTS[key]
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`createVerifier: ${key} must be a non-negative number`)
      return value
    }
    this.settings = {
      staleAfterMs: pick('staleAfterMs'),
      maxTokenAgeSec: pick('maxTokenAgeSec'),
      clockToleranceSec: pick('clockToleranceSec'),
      maxRevokedSessions: Math.max(1, pick('maxRevokedSessions')),
      pollTimeoutMs: pick('pollTimeoutMs'),
      requestTimeoutMs: pick('requestTimeoutMs'),
      readyTimeoutMs: pick('readyTimeoutMs'),
      jwksCooldownMs: pick('jwksCooldownMs'),
      jwksRefreshMs: pick('jwksRefreshMs'),
      maxEvents: Math.max(1, Math.floor(pick('maxEvents'))),
      algorithms: options.algorithms ? [...options.algorithms] : [...DEFAULTS.algorithms]
    }
    if (this.settings.algorithms.some((alg) => alg === 'none' || /^HS/i.test(alg))) {
      throw new TypeError('createVerifier: only asymmetric algorithms verify tokens from a published JWKS')
    }
    this.revocations = new RevocationStore({
      retainMs: (this.settings.maxTokenAgeSec + this.settings.clockToleranceSec) * 1000,
      maxEntries: this.settings.maxRevokedSessions,
      now: Date.now
    })

    this.readyPromise = new Promise<void>((resolve, reject) => {
      let settled = false
      this.settleReady = (error) => {
        if (settled) return
        settled = true
        if (error) reject(error)
        else resolve()
      }
    })
    this.readyPromise.catch(() => {})
    const readyTimer = setTimeout(() => {
      this.settleReady(new VerifierError('unavailable', `not ready after ${this.settings.readyTimeoutMs} ms: ${this.lastError ?? 'no answer from the issuer'}`))
    }, this.settings.readyTimeoutMs)
    readyTimer.unref()
    this.timers.push(readyTimer)
    this.timers.push(setInterval(() => this.revocations.prune(), PRUNE_EVERY_MS).unref())
    this.loopDone = this.loop()
  }

  ready(): Promise<void> {
    return this.readyPromise
  }

  get status(): VerifierStatus {
    const contact = this.lastContact(Date.now())
    return {
      state: this.closed || this.closing ? 'closed' : this.failed ? 'failed' : !this.started ? 'starting' : this.isFresh() ? 'ready' : 'stale',
      streamId: this.stream?.id ?? null,
      lastContactAt: Number.isFinite(contact) ? contact : null,
      revokedSessions: this.revocations.size,
      evictedEarly: this.revocations.evicted,
      eventsReceived: this.eventsReceived,
      streamsCreated: this.streamsCreated,
      lastError: this.lastError
    }
  }

  async verify(token: string): Promise<AccessTokenClaims> {
    if (this.closing) throw new VerifierError('closed', 'the verifier is closed')
    if (this.failed) throw new VerifierError('misconfigured', `the verifier could not start: ${this.failed.message}`)
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new VerifierError('invalid_token', 'malformed token')
    }
    const keys = this.accessKeys
    if (!keys) throw new VerifierError(this.failed ? 'misconfigured' : 'unavailable', 'the issuer\'s keys are not known yet')
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, keys, {
        typ: 'at+jwt',
        issuer: this.issuer,
        audience: this.audience,
        algorithms: this.settings.algorithms,
        clockTolerance: this.settings.clockToleranceSec,
        maxTokenAge: this.settings.maxTokenAgeSec,
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'sub', 'sid', 'client_id', 'jti']
      }))
    } catch (error) {
      if (isKeyFetchFailure(error)) throw new VerifierError('unavailable', `the issuer's keys could not be fetched: ${describe(error)}`, { cause: error })
      throw new VerifierError('invalid_token', error instanceof Error ? error.message : 'invalid token', { cause: error })
    }
    for (const claim of ['sub', 'sid', 'client_id', 'jti'] as const) {
      if (!isText(payload[claim])) throw new VerifierError('invalid_token', `"${claim}" claim must be a non-empty string`)
    }
    const claims = payload as AccessTokenClaims

    const known = this.revocations.check(claims.sid, claims.sub, claims.iat * 1000)
    if (known === 'revoked') throw new VerifierError('token_revoked', 'the session of this token has ended')
    if (known === 'clear' && this.isFresh()) return claims
    if (this.closing) throw new VerifierError('closed', 'the verifier is closed')
    if (!this.staleReported && known === 'clear') {
      this.staleReported = true
      this.log.error({ lastError: this.lastError, lastContactAt: this.status.lastContactAt }, `revocation stream stale (no answer for more than ${this.settings.staleAfterMs} ms): ${this.fallback === 'introspect' ? 'introspecting every token' : 'refusing every token'}`)
    }
    if (this.fallback === 'introspect') return this.introspect(token, claims)
    throw new VerifierError('revocation_stale', known === 'unknown'
      ? 'the revocation list overflowed: this token cannot be checked offline'
      : 'the revocation stream is stale: the session of this token cannot be checked')
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown()
    return this.closePromise
  }

  // ---- freshness ---------------------------------------------------------------------------

  /**
   * The last moment the verifier knew of every ended session: the last answer that left nothing
   * behind, or, while a long poll sent right after such an answer is waiting, the present up to
   * that poll's timeout (the issuer answers as soon as an event exists). A poll sent after a
   * failure earns nothing until it answers.
   */
  private lastContact(now: number): number {
    let contact = Math.max(this.lastAnswerAt, this.creditedUntil)
    if (this.inFlight?.credit) contact = Math.max(contact, Math.min(now, this.inFlight.since + this.settings.pollTimeoutMs))
    return contact
  }

  private isFresh(): boolean {
    if (this.closing) return false
    return Date.now() - this.lastContact(Date.now()) <= this.settings.staleAfterMs
  }

  // ---- the loop ----------------------------------------------------------------------------

  private async loop(): Promise<void> {
    while (!this.closing) {
      try {
        await this.step()
        if (this.failures > 0) this.log.info?.({ failures: this.failures }, 'revocation stream answering again')
        this.failures = 0
      } catch (error) {
        if (this.closing) break
        this.lastError = describe(error)
        this.caughtUp = false
        if (!this.started && error instanceof Permanent) {
          this.failed = error
          this.log.error({ error: this.lastError }, 'verifier cannot start')
          this.settleReady(new VerifierError('misconfigured', error.message, { cause: error }))
          return
        }
        this.failures++
        const log = this.failures === 1 ? this.log.warn : this.log.debug
        log?.call(this.log, { error: this.lastError, failures: this.failures }, 'revocation stream request failed; retrying')
        await this.sleep(Math.min(RETRY_MAX_MS, 100 * 2 ** Math.min(this.failures, 10)) * (0.5 + Math.random() / 2))
      }
    }
  }

  private async step(): Promise<void> {
    this.meta ??= await this.discover()
    this.stream ??= await this.createStream(this.meta)
    await this.poll(this.stream)
  }

  private async discover(): Promise<Metadata> {
    const asUrl = `${this.base}/.well-known/oauth-authorization-server`
    const as = await this.getMetadata(asUrl)
    const ssfUrl = `${this.base}/.well-known/ssf-configuration`
    const ssf = await this.getMetadata(ssfUrl)
    const methods = ssf.delivery_methods_supported
    if (Array.isArray(methods) && !methods.includes(POLL_DELIVERY)) throw new Permanent(`${ssfUrl}: the transmitter does not offer poll delivery`)
    const meta: Metadata = {
      jwksUri: requireUrl(as, 'jwks_uri', asUrl),
      tokenEndpoint: requireUrl(as, 'token_endpoint', asUrl),
      introspectionEndpoint: isText(as.introspection_endpoint) ? requireUrl(as, 'introspection_endpoint', asUrl) : undefined,
      configurationEndpoint: requireUrl(ssf, 'configuration_endpoint', ssfUrl),
      ssfJwksUri: isText(ssf.jwks_uri) ? requireUrl(ssf, 'jwks_uri', ssfUrl) : requireUrl(as, 'jwks_uri', asUrl)
    }
    if (this.fallback === 'introspect' && !meta.introspectionEndpoint) throw new Permanent(`${asUrl} has no introspection_endpoint (fallback: 'introspect')`)
    const jwks = (uri: string) => createRemoteJWKSet(new URL(uri), {
      cooldownDuration: this.settings.jwksCooldownMs,
      // Refetched by the timer below, never while a request waits.
      cacheMaxAge: Infinity,
      timeoutDuration: this.settings.requestTimeoutMs,
      [customFetch]: (url: string, init: RequestInit) => this.fetch(url, init)
    })
    const accessKeys = jwks(meta.jwksUri)
    const setKeys = meta.ssfJwksUri === meta.jwksUri ? accessKeys : jwks(meta.ssfJwksUri)
    await accessKeys.reload().catch((error) => { throw new Transient(`${meta.jwksUri}: ${describe(error)}`) })
    if (setKeys !== accessKeys) await setKeys.reload().catch((error) => { throw new Transient(`${meta.ssfJwksUri}: ${describe(error)}`) })
    this.accessKeys = accessKeys
    this.setKeys = setKeys
    this.timers.push(setInterval(() => {
      for (const keys of new Set([accessKeys, setKeys])) {
        keys.reload().catch((error) => this.log.warn({ error: describe(error) }, 'JWKS refresh failed; the keys already known stay in use'))
      }
    }, this.settings.jwksRefreshMs).unref())
    return meta
  }

  private async getMetadata(url: string): Promise<Record<string, unknown>> {
    const answer = await this.request(url, { method: 'GET' })
    if (answer.status === 404) throw new Permanent(`${url}: 404 (is the issuer right, and does it publish this document?)`)
    if (answer.status !== 200 || !isObject(answer.body)) throw new Transient(`${url}: ${answer.status}`)
    // RFC 8414 §3.3, SSF 1.0 §7.2: the document's issuer is the one asked for, byte for byte.
    if (answer.body.issuer !== this.issuer) {
      throw new Permanent(`${url}: issuer ${JSON.stringify(answer.body.issuer)} is not ${JSON.stringify(this.issuer)}`)
    }
    return answer.body
  }

  private async machineToken(meta: Metadata): Promise<string> {
    if (this.token && Date.now() < this.token.renewAt) return this.token.value
    const answer = await this.request(meta.tokenEndpoint, {
      method: 'POST',
      headers: { authorization: this.authorization, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: STREAM_SCOPE }).toString()
    }, this.closing)
    const body = isObject(answer.body) ? answer.body : {}
    if (answer.status === 400 || answer.status === 401 || answer.status === 403) {
      throw new Permanent(`${meta.tokenEndpoint}: ${answer.status} ${String(body.error ?? '')} (client ${this.clientId} needs the scopes ${STREAM_SCOPE})`)
    }
    if (answer.status !== 200 || !isText(body.access_token)) throw new Transient(`${meta.tokenEndpoint}: ${answer.status}`)
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60) * 1000
    // Renewed when four fifths of its life are gone, and at least 5 s before it ends.
    this.token = { value: body.access_token, renewAt: Date.now() + Math.max(0, Math.min(lifetimeMs * 0.8, lifetimeMs - 5000)) }
    return body.access_token
  }

  private async createStream(meta: Metadata): Promise<Stream> {
    const answer = await this.request(meta.configurationEndpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${await this.machineToken(meta)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ delivery: { method: POLL_DELIVERY }, events_requested: [SESSION_REVOKED] })
    })
    if (answer.status === 401) this.token = undefined
    const body = isObject(answer.body) ? answer.body : {}
    if (answer.status === 400 || answer.status === 403 || answer.status === 404 || answer.status === 405) {
      throw new Permanent(`${meta.configurationEndpoint}: ${answer.status} ${String(body.error ?? body.message ?? '')}`)
    }
    if (answer.status !== 201 && answer.status !== 200) throw new Transient(`${meta.configurationEndpoint}: ${answer.status}`)
    const delivery = isObject(body.delivery) ? body.delivery : {}
    if (!isText(body.stream_id) || !isText(delivery.endpoint_url)) throw new Permanent(`${meta.configurationEndpoint}: the new stream has no stream_id or delivery.endpoint_url`)
    const delivered = body.events_delivered
    if (Array.isArray(delivered) && !delivered.includes(SESSION_REVOKED)) throw new Permanent(`${meta.configurationEndpoint}: the stream does not deliver session-revoked events`)
    const stream = { id: body.stream_id, pollUrl: new URL(delivery.endpoint_url, meta.configurationEndpoint).href }
    this.streamsCreated++
    this.pendingAcks = []
    this.pendingErrors = {}
    this.caughtUp = false
    this.log.info?.({ streamId: stream.id }, 'revocation stream created')
    return stream
  }

  private async poll(stream: Stream): Promise<void> {
    const meta = this.meta!
    const immediate = !this.caughtUp
    const acks = this.pendingAcks
    const errors = this.pendingErrors
    const body: Record<string, unknown> = { maxEvents: this.settings.maxEvents, returnImmediately: immediate }
    if (acks.length > 0) body.ack = acks
    if (Object.keys(errors).length > 0) body.setErrs = errors
    const token = await this.machineToken(meta)
    const since = Date.now()
    const credit = this.caughtUp
    this.inFlight = { since, credit }
    let answer: HttpAnswer
    try {
      answer = await this.request(stream.pollUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body)
      }, false, immediate ? this.settings.requestTimeoutMs : this.settings.pollTimeoutMs)
    } finally {
      if (credit) this.creditedUntil = Math.max(this.creditedUntil, Math.min(Date.now(), since + this.settings.pollTimeoutMs))
      this.inFlight = undefined
    }
    if (answer.status === 404) {
      // Deleted by the issuer (idle, or by an operator): a new one is backfilled with what matters.
      this.log.warn({ streamId: stream.id }, 'revocation stream gone (404); creating a new one')
      this.stream = undefined
      this.caughtUp = false
      return
    }
    if (answer.status === 401) {
      this.token = undefined
      throw new Transient(`${stream.pollUrl}: 401`)
    }
    if (answer.status !== 200 || !isObject(answer.body) || !isObject(answer.body.sets)) throw new Transient(`${stream.pollUrl}: ${answer.status}`)
    // What was sent is acknowledged (the loop is sequential: nothing was added meanwhile).
    this.pendingAcks = []
    this.pendingErrors = {}

    for (const [jti, set] of Object.entries(answer.body.sets)) {
      const outcome = await this.readSet(jti, set)
      if (outcome === 'ack') {
        this.pendingAcks.push(jti)
        this.eventsReceived++
      } else {
        this.pendingErrors[jti] = outcome
      }
    }
    this.caughtUp = answer.body.moreAvailable !== true
    if (this.caughtUp) {
      this.lastAnswerAt = Date.now()
      this.staleReported = false
      if (!this.started) {
        this.started = true
        this.settleReady()
      }
    }
  }

  /** Verifies one SET and records what it says; a key that cannot be fetched leaves it for the next poll. */
  private async readSet(jti: string, set: unknown): Promise<'ack' | SetError> {
    const keys = this.setKeys!
    if (typeof set !== 'string') return { err: 'invalid_request', description: 'not a compact JWS' }
    const wasCoolingDown = keys.coolingDown
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(set, keys, {
        typ: 'secevent+jwt',
        issuer: this.issuer,
        audience: this.clientId,
        algorithms: this.settings.algorithms,
        requiredClaims: ['iss', 'aud', 'iat', 'jti', 'events']
      }))
    } catch (error) {
      if (error instanceof joseErrors.JWKSNoMatchingKey && wasCoolingDown) throw new Transient(`SET ${jti}: unknown kid (JWKS refetch cooling down)`)
      if (isKeyFetchFailure(error)) throw new Transient(`SET ${jti}: JWKS: ${describe(error)}`)
      const claim = error instanceof joseErrors.JWTClaimValidationFailed ? error.claim : undefined
      const err = claim === 'iss' ? 'invalid_issuer' : claim === 'aud' ? 'invalid_audience' : error instanceof joseErrors.JWKSNoMatchingKey ? 'invalid_key' : 'invalid_request'
      this.log.error({ jti, error: describe(error) }, 'SET refused')
      return { err, description: error instanceof Error ? error.message : 'invalid SET' }
    }
    if (payload.jti !== jti || !isObject(payload.events)) return { err: 'invalid_request', description: 'jti or events malformed' }
    for (const [type, event] of Object.entries(payload.events)) {
      if (type === SESSION_REVOKED) this.recordRevocation(payload, isObject(event) ? event : {})
      // credential-change, verification and anything else: nothing to do but acknowledge.
    }
    return 'ack'
  }

  private recordRevocation(payload: JWTPayload, event: Record<string, unknown>): void {
    const at = typeof event.event_timestamp === 'number' ? event.event_timestamp : (payload.iat as number)
    const subject = isObject(payload.sub_id) ? payload.sub_id : isObject(event.subject) ? event.subject : undefined
    const user = subject?.format === 'iss_sub' ? subject : subject?.format === 'complex' && isObject(subject.user) ? subject.user : undefined
    const session = subject?.format === 'complex' && isObject(subject.session) ? subject.session : undefined
    if (user && (user.format !== 'iss_sub' || user.iss !== this.issuer)) {
      this.log.warn({ jti: payload.jti }, 'session-revoked event of another issuer\'s subject; ignored')
      return
    }
    if (session && session.format === 'opaque' && isText(session.id)) {
      this.revocations.revokeSession(session.id, at * 1000)
    } else if (!session && user && isText(user.sub)) {
      this.revocations.revokeUser(user.sub, at * 1000)
    } else {
      this.log.error({ jti: payload.jti, sub_id: subject }, 'session-revoked event with a subject the verifier does not understand; ignored')
    }
  }

  // ---- introspection (fallback) --------------------------------------------------------------

  private introspect(token: string, claims: AccessTokenClaims): Promise<AccessTokenClaims> {
    let pending = this.introspections.get(token)
    if (!pending) {
      pending = this.askIntrospection(token, claims).finally(() => this.introspections.delete(token))
      this.introspections.set(token, pending)
    }
    return pending
  }

  private async askIntrospection(token: string, claims: AccessTokenClaims): Promise<AccessTokenClaims> {
    const endpoint = this.meta?.introspectionEndpoint
    if (!endpoint) throw new VerifierError('revocation_stale', 'the revocation stream is stale and there is no introspection endpoint')
    let answer: HttpAnswer
    try {
      answer = await this.request(endpoint, {
        method: 'POST',
        headers: { authorization: this.authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString()
      }, true)
    } catch (error) {
      throw new VerifierError('revocation_stale', `the revocation stream is stale and introspection failed: ${describe(error)}`, { cause: error })
    }
    if (answer.status !== 200 || !isObject(answer.body)) {
      throw new VerifierError('revocation_stale', `the revocation stream is stale and introspection answered ${answer.status}`)
    }
    if (answer.body.active !== true) throw new VerifierError('token_revoked', 'the issuer says this token is not active')
    if (answer.body.sid !== undefined && canonicalId(String(answer.body.sid)) !== canonicalId(claims.sid)) {
      throw new VerifierError('revocation_stale', 'introspection answered for another session')
    }
    return claims
  }

  // ---- plumbing ----------------------------------------------------------------------------

  /**
   * One request to the issuer, answered or failed within `timeoutMs`; aborted by close() unless
   * `survivesClose` (the stream deletion, introspection). Network failures reject (Transient).
   */
  private async request(url: string, init: RequestInit, survivesClose = false, timeoutMs: number = this.settings.requestTimeoutMs): Promise<HttpAnswer> {
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = survivesClose ? timeout : AbortSignal.any([timeout, this.abort.signal])
    let response: Response
    try {
      response = await this.fetch(url, { ...init, signal, redirect: 'manual', headers: { accept: 'application/json', ...(init.headers as Record<string, string>) } })
    } catch (error) {
      throw new Transient(`${init.method ?? 'GET'} ${url}: ${timeout.aborted ? `no answer within ${timeoutMs} ms` : describe(error)}`)
    }
    let text: string
    try {
      text = await response.text()
    } catch (error) {
      throw new Transient(`${init.method ?? 'GET'} ${url}: ${timeout.aborted ? `the answer did not arrive within ${timeoutMs} ms` : describe(error)}`)
    }
    let body: unknown
    try {
      body = text.length > 0 ? JSON.parse(text) : undefined
    } catch {
      // Not JSON: the status alone decides (every caller wants an object from a success).
    }
    return { status: response.status, headers: response.headers, body }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      const signal = this.abort.signal
      function done() {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      signal.addEventListener('abort', done)
    })
  }

  private async shutdown(): Promise<void> {
    this.closing = true
    this.abort.abort()
    for (const timer of this.timers) clearTimeout(timer)
    this.settleReady(new VerifierError('closed', 'closed before it was ready'))
    await this.loopDone
    const stream = this.stream
    const meta = this.meta
    this.stream = undefined
    if (stream && meta) {
      try {
        const token = await this.machineToken(meta)
        const url = new URL(meta.configurationEndpoint)
        url.searchParams.set('stream_id', stream.id)
        const answer = await this.request(url.href, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } }, true)
        if (answer.status !== 204 && answer.status !== 200 && answer.status !== 404) throw new Error(`answered ${answer.status}`)
        this.log.info?.({ streamId: stream.id }, 'revocation stream deleted')
      } catch (error) {
        this.log.warn({ streamId: stream.id, error: describe(error) }, 'revocation stream not deleted (the issuer deletes idle streams itself)')
      }
    }
    this.closed = true
  }
}
