// The token of a mail waiting in the outbox, sealed (AES-256-GCM) so the database alone never
// holds a usable token: the recovery_tokens row keeps only its SHA-256, and the outbox row this
// sealed copy, erased once the mail is sent, given up or cancelled (docs/recovery.md, "Tokens").
// The key is derived from the refresh-chain key (REFRESH_CHAIN_SECRET or the signing key), which
// every instance shares, so any instance can send any instance's mail.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

export interface TokenSealer {
  seal(token: string): string
  /** The token, or undefined if `sealed` was not sealed with this key (a changed secret). */
  unseal(sealed: string): string | undefined
}

const IV_BYTES = 12
const TAG_BYTES = 16

export function tokenSealer(secret: Buffer): TokenSealer {
  const key = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'auth-service mail outbox token', 32))
  return {
    seal(token) {
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const body = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()])
      return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')
    },
    unseal(sealed) {
      const raw = Buffer.from(sealed, 'base64url')
      if (raw.length <= IV_BYTES + TAG_BYTES) return undefined
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES))
        decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
        return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
      } catch {
        return undefined
      }
    }
  }
}
