// The claim rules of every token kind, in one place (docs/api.md, "Tokens"): what the header and
// payload of a genuine token look like once its signature is known to be good. Both verification
// paths (token-verifier.ts) end here, and time is always the service's injected clock.
import type { SigningAlgorithm } from './keys.js'

/**
 * The token kinds this service issues: a user's access and refresh tokens, and the access tokens
 * of machine clients (the client credentials grant). Access tokens of both kinds are RFC 9068
 * tokens; they are told apart by their audience and their claims (a machine token has no `sid`).
 */
export type TokenKind = 'access' | 'refresh' | 'machine'

export const TOKEN_TYP: Readonly<Record<TokenKind, string>> = {
  access: 'at+jwt',
  // Never accepted where an access token is expected, nor the other way round; a plain `JWT` is neither.
  refresh: 'refresh+jwt',
  machine: 'at+jwt'
}

export interface AccessTokenClaims {
  iss: string
  aud: string | string[]
  /** The user id, canonical (lower-case UUID). */
  sub: string
  /** The session id, canonical (lower-case UUID). */
  sid: string
  client_id: string
  jti: string
  iat: number
  exp: number
}

export interface RefreshTokenClaims {
  iss: string
  aud: string | string[]
  sub: string
  sid: string
  jti: string
  iat: number
  exp: number
}

/** A machine client's access token: `sub` and `client_id` are the client, `aud` is this service. */
export interface MachineTokenClaims {
  iss: string
  aud: string | string[]
  sub: string
  client_id: string
  /** Space-separated, as granted at the token endpoint. */
  scope: string
  jti: string
  iat: number
  exp: number
}

export interface ClaimsOf {
  access: AccessTokenClaims
  refresh: RefreshTokenClaims
  machine: MachineTokenClaims
}

/** What the tokens of this service are issued with and checked against. */
export interface TokenSettings {
  readonly issuer: string
  readonly audience: string
  readonly clientId: string
  /** Seconds. */
  readonly accessTtl: number
  /** Seconds, counted from login. */
  readonly refreshTtl: number
  /** Seconds of clock skew accepted on exp, nbf and iat. */
  readonly clockTolerance: number
}

/** A token split into its parts, its signature already checked. */
export interface DecodedToken {
  readonly header: Record<string, unknown>
  readonly payload: Record<string, unknown>
}

export class TokenRejectedError extends Error {
  override name = 'TokenRejectedError'
}

const REQUIRED: Readonly<Record<TokenKind, readonly string[]>> = {
  access: ['iss', 'aud', 'sub', 'sid', 'client_id', 'jti', 'iat', 'exp'],
  refresh: ['iss', 'aud', 'sub', 'sid', 'jti', 'iat', 'exp'],
  machine: ['iss', 'aud', 'sub', 'client_id', 'scope', 'jti', 'iat', 'exp']
}

/**
 * The audience a token of `kind` is issued for: users' tokens for the APIs (JWT_AUDIENCE), a
 * machine client's for this service alone (its issuer URL), so no downstream API that accepts
 * users' tokens can mistake one for a user's.
 */
export function audienceOf(kind: TokenKind, settings: TokenSettings): string {
  return kind === 'machine' ? settings.issuer : settings.audience
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * The one form a UUID is compared in (cache keys, notifications, SQL): lower case, as PostgreSQL
 * prints it. PostgreSQL compares UUIDs case-insensitively while a Map does not, so an upper-case
 * variant of a revoked session id would otherwise miss the cache that knows it is dead.
 */
export function canonicalUuid(value: unknown): string | undefined {
  return typeof value === 'string' && UUID.test(value) ? value.toLowerCase() : undefined
}

/** How old a token of this kind may be, in seconds from `iat`: never older than its lifetime. */
function maxAge(kind: TokenKind, settings: TokenSettings): number {
  return kind === 'refresh' ? settings.refreshTtl : settings.accessTtl
}

/** The `typ` header as RFC 8725 §3.11 compares it: case-insensitive, `application/` optional. */
function typOf(header: Record<string, unknown>): string | undefined {
  return typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : undefined
}

const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)
const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0

function reject(reason: string): never {
  throw new TokenRejectedError(reason)
}

/**
 * The claims of a genuine token of `kind`, with `sub` and `sid` in canonical form; throws
 * TokenRejectedError naming the first rule broken. The rules: our algorithm, the kind's `typ`,
 * no `crit` (we understand no extension), every required claim, our `iss` and the kind's `aud`,
 * `exp` not passed, `nbf` reached, `iat` neither in the future nor older than the kind's lifetime
 * (each within the clock tolerance); for a machine token, `sub` is its `client_id` and no `sid`.
 */
export function checkClaims<K extends TokenKind>(
  kind: K,
  token: DecodedToken,
  algorithm: SigningAlgorithm,
  settings: TokenSettings,
  nowMs: number
): ClaimsOf[K] {
  const { header, payload } = token
  const tolerance = settings.clockTolerance * 1000
  if (header.alg !== algorithm) reject('algorithm')
  if (typOf(header) !== TOKEN_TYP[kind]) reject('typ')
  if (header.crit !== undefined) reject('crit')
  for (const claim of REQUIRED[kind]) if (!(claim in payload)) reject(`missing ${claim}`)

  if (payload.iss !== settings.issuer) reject('iss')
  const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud]
  if (!audiences.every((value) => typeof value === 'string') || !audiences.includes(audienceOf(kind, settings))) reject('aud')

  const { exp, iat, nbf } = payload
  if (!isTime(exp) || nowMs > exp * 1000 + tolerance) reject('exp')
  if (!isTime(iat) || iat * 1000 > nowMs + tolerance || nowMs > (iat + maxAge(kind, settings)) * 1000 + tolerance) reject('iat')
  if (nbf !== undefined && (!isTime(nbf) || nowMs < nbf * 1000 - tolerance)) reject('nbf')

  if (!isText(payload.jti)) reject('jti')
  if (kind === 'machine') {
    if (!isText(payload.client_id) || payload.sub !== payload.client_id) reject('sub')
    if ('sid' in payload) reject('sid')
    if (typeof payload.scope !== 'string') reject('scope')
    return payload as unknown as ClaimsOf[K]
  }
  const sub = canonicalUuid(payload.sub) ?? reject('sub')
  const sid = canonicalUuid(payload.sid) ?? reject('sid')
  if (kind === 'access' && !isText(payload.client_id)) reject('client_id')
  return { ...payload, sub, sid } as unknown as ClaimsOf[K]
}
