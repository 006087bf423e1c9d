import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto'
import { createSigner, type VerifierOptions } from 'fast-jwt'
import { importSPKI, jwtVerify, type CryptoKey, type JWSHeaderParameters, type JWTVerifyOptions } from 'jose'
import type { Config } from '../config.js'
import { InvalidRefreshTokenError } from './errors.js'
import type { KeyRing } from './keys.js'
import { VerifiedTokenCache } from './verified-token-cache.js'

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
    requiredClaims: typ === ACCESS_TOKEN_TYP
      ? ['iss', 'aud', 'sub', 'sid', 'client_id', 'jti', 'iat', 'exp']
      : ['iss', 'aud', 'sub', 'sid', 'jti', 'iat', 'exp'],
    allowedCritHeaders: [],
    // fast-jwt checks `iat` (a number, not too old) only when maxAge is set. No token of ours
    // is older than its lifetime: an access token lives accessTtl, a refresh token at most refreshTtl.
    maxAge: (typ === ACCESS_TOKEN_TYP ? settings.accessTtl : settings.refreshTtl) * 1000 + settings.clockTolerance * 1000
  }
}

/**
 * Refresh tokens are verified with jose rather than fast-jwt: each one is presented once, so
 * every refresh, revoke and logout-by-refresh-token pays a full signature check, and jose runs
 * it through WebCrypto, which does the work on libuv's thread pool. An Ed25519 check costs
 * ~60-85 µs of CPU; on the event loop that was more than a quarter of a refresh (bench/PROFILE.md),
 * off it the loop pays ~15 µs. The rules are the same as for access tokens (verifierOptions):
 * the configured algorithm only, the key picked by `kid` alone (`jku`, `x5u`, `jwk` and `x5c`
 * are never looked at), our iss and aud, the `typ`, the required claims, exp and nbf with the
 * clock tolerance, an age under the token's lifetime, and no `crit` (jose rejects any it does
 * not know). Keys are imported once per kid.
 */
function refreshTokenVerifier(keys: KeyRing, settings: TokenSettings) {
  const imported = new Map<string, Promise<CryptoKey | Uint8Array>>()
  const keyFor = (header: JWSHeaderParameters): Promise<CryptoKey | Uint8Array> => {
    const kid = header.kid
    const key = keys.verificationKey(kid)
    if (key === undefined || typeof kid !== 'string') throw new Error('unknown kid')
    let ready = imported.get(kid)
    if (!ready) {
      ready = keys.algorithm === 'HS256' ? Promise.resolve(new TextEncoder().encode(key)) : importSPKI(key, keys.algorithm)
      imported.set(kid, ready)
    }
    return ready
  }
  const options: JWTVerifyOptions = {
    algorithms: [keys.algorithm],
    issuer: settings.issuer,
    audience: settings.audience,
    typ: REFRESH_TOKEN_TYP,
    requiredClaims: ['iss', 'aud', 'sub', 'sid', 'jti', 'iat', 'exp'],
    clockTolerance: settings.clockTolerance,
    maxTokenAge: settings.refreshTtl + settings.clockTolerance
  }
  return async (token: string, now: Date): Promise<RefreshTokenClaims> => {
    const { payload } = await jwtVerify(token, keyFor, { ...options, currentDate: now })
    // jose accepts an `aud` array that holds our audience among non-strings; fast-jwt (and
    // RFC 7519 §4.1.3) does not.
    if (Array.isArray(payload.aud) && !payload.aud.every((aud) => typeof aud === 'string')) throw new Error('malformed aud')
    return payload as unknown as RefreshTokenClaims
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
  const verifyRefresh = refreshTokenVerifier(keys, settings)
  // A refresh token checked twice in one request (the per-session rate limit, then the rotation)
  // pays for one signature check.
  const verifiedRefreshTokens = new VerifiedTokenCache<RefreshTokenClaims>(settings.verifiedCacheSize, (claims) => claims.exp)

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
      const at = now()
      const known = verifiedRefreshTokens.lookup(token, at.getTime())
      if (known) return known
      let claims: RefreshTokenClaims
      try {
        claims = await verifyRefresh(token, at)
      } catch {
        throw new InvalidRefreshTokenError()
      }
      if (!isUuid(claims.sid) || !isUuid(claims.sub) || typeof claims.jti !== 'string' || !issuedInThePast(claims.iat, at, settings)) {
        throw new InvalidRefreshTokenError()
      }
      verifiedRefreshTokens.remember(token, claims)
      return claims
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
