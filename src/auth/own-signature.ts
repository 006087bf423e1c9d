import { createPrivateKey, sign, timingSafeEqual } from 'node:crypto'
import type { KeyRing } from './keys.js'

/**
 * Recognises a token signed by the service's current Ed25519 key by signing its input again.
 *
 * Ed25519 signatures are deterministic (RFC 8032 §5.1.6): a key makes exactly one signature for
 * a given input, and making it takes the private key, which is all that verifying proves too.
 * So a token whose signature is the one we make now was signed with this key. Signing is much
 * cheaper than verifying (bench/crypto.ts measures both), and POST /refresh checks a different
 * token on every request. The comparison is constant-time: a timing leak would give away, byte by byte, our
 * signature for an input of an attacker's choosing.
 *
 * It answers only "signed by the current key" or "not known to be": everything else (a retired
 * key's token, a forgery) goes through full verification, which rejects what is bad. The claims
 * are checked either way. Undefined for ES256 (randomised signatures) and HS256 (already a MAC).
 */
export function ownSignatureCheck(keys: KeyRing): ((token: string) => boolean) | undefined {
  if (keys.algorithm !== 'EdDSA') return undefined
  const key = createPrivateKey(keys.signingKey)

  return function signedByCurrentKey(token: string): boolean {
    const first = token.indexOf('.')
    const last = token.lastIndexOf('.')
    // Exactly three segments, as our signer makes them.
    if (first <= 0 || token.indexOf('.', first + 1) !== last) return false
    const ours = Buffer.from(sign(null, Buffer.from(token.slice(0, last)), key).toString('base64url'))
    const presented = Buffer.from(token.slice(last + 1))
    return presented.length === ours.length && timingSafeEqual(presented, ours)
  }
}
