import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto'
import { createDecoder, createSigner, createVerifier, type VerifierOptions } from 'fast-jwt'
import type { Config } from '../config.js'
import { InvalidRefreshTokenError } from './errors.js'
import type { KeyRing } from './keys.js'
import { ownSignatureCheck } from './own-signature.js'

// RFC 9068 names the access token's type; the refresh token gets a type of its own so that
// neither is ever accepted where the other is expected (and a plain `JWT` is neither).
export const ACCESS_TOKEN_TYP = 'at+jwt'
export const REFRESH_TOKEN_TYP = 'refresh+jwt'

export interface AccessTokenClaims {
  iss: string
  aud: string
  sub: string
  sid: string
  client_id: string
  jti: string
  iat: number
  exp: number
}

export interface RefreshTokenClaims {
  iss: string
  aud: string
  sub: string
  sid: string
  jti: string
  iat: number
  exp: number
}

export interface IssuedAccessToken {
  token: string
  /** Seconds until it expires, for the token pair's `expires_in`. */
  expiresIn: number
}

export type TokenSettings = Config['tokens']

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value)
}

const toSeconds = (date: Date): number => Math.floor(date.getTime() / 1000)

/**
 * `iat` is a number and not in the future beyond the clock tolerance (fast-jwt checks its age
 * under maxAge but not this). Checked against the service's clock, which tests can move.
 */
export function issuedInThePast(iat: unknown, now: Date, settings: TokenSettings): boolean {
  return typeof iat === 'number' && Number.isFinite(iat) && iat * 1000 <= now.getTime() + settings.clockTolerance * 1000
}

const REQUIRED_CLAIMS: Record<string, string[]> = {
  [ACCESS_TOKEN_TYP]: ['iss', 'aud', 'sub', 'sid', 'client_id', 'jti', 'iat', 'exp'],
  [REFRESH_TOKEN_TYP]: ['iss', 'aud', 'sub', 'sid', 'jti', 'iat', 'exp']
}

/**
 * How old (ms from `iat`) a token may be. fast-jwt checks `iat` (a number, not too old) only
 * when maxAge is set. No token of ours is older than its lifetime: an access token lives
 * accessTtl, a refresh token at most refreshTtl.
 */
function maxAgeMs(settings: TokenSettings, typ: string): number {
  return ((typ === ACCESS_TOKEN_TYP ? settings.accessTtl : settings.refreshTtl) + settings.clockTolerance) * 1000
}

/**
 * The verification rules shared by both token types (contract, "Tokens"): one algorithm, a
 * known kid, our iss and aud, the right typ, exp required, nbf honoured, no unknown `crit`.
 */
export function verifierOptions(keys: KeyRing, settings: TokenSettings, typ: string): Partial<VerifierOptions> {
  return {
    algorithms: [keys.algorithm],
    allowedIss: settings.issuer,
    allowedAud: settings.audience,
    checkTyp: typ,
    clockTolerance: settings.clockTolerance * 1000,
    requiredClaims: REQUIRED_CLAIMS[typ],
    allowedCritHeaders: [],
    maxAge: maxAgeMs(settings, typ)
  }
}

/**
 * The rules of verifierOptions, as fast-jwt applies them, for a token whose signature is already
 * known to be ours (services/own-signature.ts). Our signer never sets `crit` or `nbf` and always
 * our alg, kid, iss and aud, but every rule is checked all the same: typ is what tells an access
 * token from a refresh token, iss and aud may have been reconfigured since, and time moves on.
 * Dates are checked against the real clock, as fast-jwt does.
 */
function meetsVerifierRules(
  token: { header: Record<string, unknown>, payload: Record<string, unknown> },
  keys: KeyRing,
  settings: TokenSettings,
  typ: string,
  nowMs: number
): boolean {
  const { header, payload } = token
  const tolerance = settings.clockTolerance * 1000
  const dateWithin = (claim: string, holds: (ms: number) => boolean) =>
    !(claim in payload) || (typeof payload[claim] === 'number' && holds((payload[claim] as number) * 1000))
  const aud = payload.aud
  const audiences = Array.isArray(aud) ? aud : [aud]
  return (
    header.alg === keys.algorithm &&
    header.kid === keys.signingKid &&
    typeof header.typ === 'string' &&
    header.typ.toLowerCase().replace(/^application\//, '') === typ &&
    !header.crit &&
    REQUIRED_CLAIMS[typ].every((claim) => claim in payload) &&
    dateWithin('nbf', (nbf) => nowMs >= nbf - tolerance) &&
    dateWithin('exp', (exp) => nowMs <= exp + tolerance) &&
    dateWithin('iat', (iat) => nowMs <= iat + maxAgeMs(settings, typ)) &&
    audiences.every((value) => typeof value === 'string') &&
    audiences.includes(settings.audience) &&
    payload.iss === settings.issuer
  )
}

/**
 * A verifier per key, picked by the token's `kid` only: `jku`, `x5u`, `jwk` and `x5c` are never
 * looked at, and an unknown or missing kid rejects the token. Each verifier is built once with
 * its key, so the PEM is parsed once, not on every verification.
 */
function verifierByKid(keys: KeyRing, options: Partial<VerifierOptions>) {
  const decodeHeader = createDecoder({ complete: true })
  const verifiers = new Map<string, (token: string) => unknown>()
  return function verify(token: string): unknown {
    const { header } = decodeHeader(token) as { header: Record<string, unknown> }
    const kid = header.kid
    const key = keys.verificationKey(kid)
    if (!key || typeof kid !== 'string') throw new Error('unknown kid')
    let verifier = verifiers.get(kid)
    if (!verifier) {
      verifier = createVerifier({ ...options, key })
      verifiers.set(kid, verifier)
    }
    return verifier(token)
  }
}

export function createTokenService(keys: KeyRing, settings: TokenSettings, now: () => Date = () => new Date()) {
  const signAccess = createSigner({
    key: keys.signingKey,
    algorithm: keys.algorithm,
    kid: keys.signingKid,
    header: { alg: keys.algorithm, typ: ACCESS_TOKEN_TYP },
    iss: settings.issuer,
    aud: settings.audience
  })
  const signRefresh = createSigner({
    key: keys.signingKey,
    algorithm: keys.algorithm,
    kid: keys.signingKid,
    header: { alg: keys.algorithm, typ: REFRESH_TOKEN_TYP },
    iss: settings.issuer,
    aud: settings.audience
  })
  // With the verified-token cache, a refresh token checked twice in one request (the per-session
  // rate limit, then the rotation) pays for one signature check.
  const verifyRefresh = verifierByKid(keys, {
    ...verifierOptions(keys, settings, REFRESH_TOKEN_TYP),
    ...(settings.verifiedCacheSize > 0 ? { cache: settings.verifiedCacheSize } : {})
  })
  const signedByCurrentKey = ownSignatureCheck(keys)
  const decodeComplete = createDecoder({ complete: true })

  /**
   * The claims of a token of type `typ` signed by the current key (services/own-signature.ts),
   * checked against the verifier rules; undefined when the token is not known to be ours, and
   * then only full verification can tell. Throws for a token of ours that breaks a rule.
   */
  function ownTokenClaims(token: string, typ: string): Record<string, unknown> | undefined {
    if (!signedByCurrentKey?.(token)) return undefined
    const decoded = decodeComplete(token) as { header: Record<string, unknown>, payload: Record<string, unknown> }
    if (!meetsVerifierRules(decoded, keys, settings, typ, Date.now())) throw new Error(`not a valid ${typ}`)
    return decoded.payload
  }

  return {
    /** An access token for a session; it never outlives the session itself. */
    issueAccessToken(userId: string, sessionId: string, sessionExpiresAt: Date, now: Date): IssuedAccessToken {
      const iat = toSeconds(now)
      const exp = Math.min(iat + settings.accessTtl, toSeconds(sessionExpiresAt))
      const token = signAccess({ sub: userId, sid: sessionId, client_id: settings.clientId, jti: randomUUID(), iat, exp })
      return { token, expiresIn: Math.max(exp - iat, 0) }
    },

    /**
     * Refresh tokens are a pure function of the session's state (jti, rotation time, expiry), so
     * the grace window can hand out the very same token again without storing it. EdDSA signatures
     * are deterministic, so the bytes repeat too; with ES256 only the signature differs.
     */
    issueRefreshToken(userId: string, sessionId: string, jti: string, issuedAt: Date, expiresAt: Date): string {
      return signRefresh({ sub: userId, sid: sessionId, jti, iat: toSeconds(issuedAt), exp: toSeconds(expiresAt) })
    },

    async verifyRefreshToken(token: string): Promise<RefreshTokenClaims> {
      let claims: RefreshTokenClaims
      try {
        claims = (ownTokenClaims(token, REFRESH_TOKEN_TYP) ?? verifyRefresh(token)) as RefreshTokenClaims
      } catch {
        throw new InvalidRefreshTokenError()
      }
      if (!isUuid(claims.sid) || !isUuid(claims.sub) || typeof claims.jti !== 'string' || !issuedInThePast(claims.iat, now(), settings)) {
        throw new InvalidRefreshTokenError()
      }
      return claims
    },

    /**
     * An access token's claims when the current key signed it, checked without a signature
     * verification; undefined when it did not (then @fastify/jwt verifies it). Throws for a token
     * of ours that breaks a rule.
     */
    ownAccessTokenClaims(token: string): AccessTokenClaims | undefined {
      return ownTokenClaims(token, ACCESS_TOKEN_TYP) as AccessTokenClaims | undefined
    },

    newRefreshJti(): string {
      return randomBytes(32).toString('base64url')
    },

    /**
     * The jti that follows `jti` in a session's rotation chain: a keyed hash, so it can be
     * recomputed for a retry in the grace window but not predicted by anyone without the key.
     */
    nextRefreshJti(jti: string): string {
      return createHmac('sha256', keys.jtiChainKey).update(jti).digest('base64url')
    },

    /** What the database stores instead of a jti. */
    hashJti(jti: string): string {
      return createHash('sha256').update(jti).digest('hex')
    }
  }
}

export type TokenService = ReturnType<typeof createTokenService>
