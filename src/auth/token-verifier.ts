// The one way a token of this service is verified, whatever its kind: a cache of tokens already
// verified, the own-signature fast path for tokens of the current key, a full signature
// verification for every other token, then the kind's claim rules on the service's clock.
import { createDecoder } from 'fast-jwt'
import { checkClaims, TokenRejectedError, type ClaimsOf, type DecodedToken, type TokenKind, type TokenSettings } from './claims.js'
import type { KeyRing } from './keys.js'
import { ownSignatureCheck } from './own-signature.js'
import { VerifiedTokenCache } from './verified-token-cache.js'

/** Checks a token's signature with one key and returns its parts; throws when it does not hold. */
export type SignatureVerifier = (token: string) => DecodedToken

export interface TokenVerifierOptions {
  readonly keys: KeyRing
  readonly settings: TokenSettings
  readonly now: () => Date
  /** Tokens remembered once verified (0: none). Only kinds presented many times are cached. */
  readonly cacheSize: number
  /**
   * The full signature verification for the key a `kid` names, or undefined for a kid the ring
   * does not know. `jku`, `x5u`, `jwk` and `x5c` headers are never used to find a key.
   */
  readonly signatureVerifier: (kid: string) => SignatureVerifier | undefined
}

export interface TokenVerifier {
  /** The claims of a genuine, unexpired token of `kind`; throws TokenRejectedError otherwise. */
  verify<K extends TokenKind>(token: string, kind: K): ClaimsOf[K]
  /** Tokens in the verified-token cache. */
  readonly cacheSize: number
}

/** Access tokens come back on every request of a session or client; a refresh token is used once. */
const CACHED_KINDS: ReadonlySet<TokenKind> = new Set(['access', 'machine'])

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const { keys, settings, now } = options
  const cache = new VerifiedTokenCache<ClaimsOf[TokenKind]>(options.cacheSize)
  const signedByCurrentKey = ownSignatureCheck(keys)
  const decode = createDecoder({ complete: true }) as (token: string) => DecodedToken

  function decoded(token: string): DecodedToken {
    try {
      return decode(token)
    } catch {
      throw new TokenRejectedError('malformed')
    }
  }

  /** The token's parts once its signature is known to be good. */
  function verifiedParts(token: string): DecodedToken {
    if (signedByCurrentKey?.(token)) {
      const parts = decoded(token)
      // The signature covers the header, so only our signer could have written this kid.
      if (parts.header.kid !== keys.signingKid) throw new TokenRejectedError('kid')
      return parts
    }
    const kid = decoded(token).header.kid
    const verifySignature = typeof kid === 'string' ? options.signatureVerifier(kid) : undefined
    if (!verifySignature) throw new TokenRejectedError('kid')
    try {
      return verifySignature(token)
    } catch (err) {
      throw new TokenRejectedError('signature', { cause: err })
    }
  }

  return {
    verify<K extends TokenKind>(token: string, kind: K): ClaimsOf[K] {
      const nowMs = now().getTime()
      const cacheable = CACHED_KINDS.has(kind)
      if (cacheable) {
        const known = cache.lookup(token, kind, nowMs)
        if (known) return known as ClaimsOf[K]
      }
      const claims = checkClaims(kind, verifiedParts(token), keys.algorithm, settings, nowMs)
      if (cacheable) cache.remember(token, kind, claims, claims.exp * 1000 + settings.clockTolerance * 1000)
      return claims
    },
    get cacheSize() {
      return cache.size
    }
  }
}
