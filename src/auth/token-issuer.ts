import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import { audienceOf, TOKEN_TYP, type TokenKind, type TokenSettings } from './claims.js'
import type { KeyRing } from './keys.js'

export interface IssuedAccessToken {
  token: string
  /** Seconds until it expires, for the token pair's `expires_in`. */
  expiresIn: number
}

const toSeconds = (date: Date): number => Math.floor(date.getTime() / 1000)

/** The signer of tokens of one kind: the current key, its kid, our iss, the kind's aud and typ. */
function signerOf(keys: KeyRing, settings: TokenSettings, kind: TokenKind) {
  return createSigner({
    key: keys.signingKey,
    algorithm: keys.algorithm,
    kid: keys.signingKid,
    header: { alg: keys.algorithm, typ: TOKEN_TYP[kind] },
    iss: settings.issuer,
    aud: audienceOf(kind, settings)
  })
}

/** Signs the service's tokens and derives the refresh-jti chain (docs/api.md, "Tokens"). */
export function createTokenIssuer(keys: KeyRing, settings: TokenSettings) {
  const signAccess = signerOf(keys, settings, 'access')
  const signRefresh = signerOf(keys, settings, 'refresh')
  const signMachine = signerOf(keys, settings, 'machine')

  return {
    /** An access token for a session; it never outlives the session itself. */
    issueAccessToken(userId: string, sessionId: string, sessionExpiresAt: Date, now: Date): IssuedAccessToken {
      const iat = toSeconds(now)
      const exp = Math.min(iat + settings.accessTtl, toSeconds(sessionExpiresAt))
      const token = signAccess({ sub: userId, sid: sessionId, client_id: settings.clientId, jti: randomUUID(), iat, exp })
      return { token, expiresIn: Math.max(exp - iat, 0) }
    },

    /** A machine client's access token (client credentials grant): RFC 9068, no session. */
    issueMachineToken(clientId: string, scope: string, now: Date): IssuedAccessToken {
      const iat = toSeconds(now)
      const token = signMachine({ sub: clientId, client_id: clientId, scope, jti: randomUUID(), iat, exp: iat + settings.accessTtl })
      return { token, expiresIn: settings.accessTtl }
    },

    /**
     * Refresh tokens are a pure function of the session's state (jti, rotation time, expiry), so
     * the grace window can hand out the very same token again without storing it. EdDSA signatures
     * are deterministic, so the bytes repeat too; with ES256 only the signature differs.
     */
    issueRefreshToken(userId: string, sessionId: string, jti: string, issuedAt: Date, expiresAt: Date): string {
      return signRefresh({ sub: userId, sid: sessionId, jti, iat: toSeconds(issuedAt), exp: toSeconds(expiresAt) })
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

export type TokenIssuer = ReturnType<typeof createTokenIssuer>
