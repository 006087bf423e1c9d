// The signing algorithm's cost per token operation, with the service's own token code (no HTTP,
// no database), to choose the default key type with numbers (docs/decisions.md, "Tokens").
// Usage: npx tsx bench/crypto.ts [iterations=3000]
import { randomUUID } from 'node:crypto'
import { createVerifier } from 'fast-jwt'
import { generateSigningKeyPem, loadKeyRing } from '../src/auth/keys.js'
import { createTokenIssuer } from '../src/auth/token-issuer.js'
import { createTokenVerifier, type SignatureVerifier } from '../src/auth/token-verifier.js'
import { loadConfig } from '../src/config.js'

const iterations = Number(process.argv[2] ?? 3000)
const algorithms = ['EdDSA', 'ES256'] as const

function microseconds(run: (i: number) => void): number {
  for (let i = 0; i < Math.min(500, iterations); i++) run(i) // warm-up
  const started = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) run(i)
  return Number(process.hrtime.bigint() - started) / 1000 / iterations
}

const rows: string[] = []
for (const algorithm of algorithms) {
  const config = loadConfig({ JWT_ALGORITHM: algorithm, JWT_PRIVATE_KEY: generateSigningKeyPem(algorithm), TOKEN_CACHE_SIZE: '0' })
  const keys = await loadKeyRing(config.keys, { dataDir: '/nonexistent', isProduction: false })
  const tokens = createTokenIssuer(keys, config.tokens)
  // The service's signature check is @fastify/jwt's, which is fast-jwt with these options.
  const signatureCheck = createVerifier({ key: keys.verificationKey(keys.signingKid), algorithms: [algorithm], complete: true, ignoreExpiration: true, ignoreNotBefore: true })
  const verifier = createTokenVerifier({
    keys,
    settings: config.tokens,
    now: () => new Date(),
    cacheSize: 0,
    signatureVerifier: (kid) => (kid === keys.signingKid ? (signatureCheck as SignatureVerifier) : undefined)
  })
  const now = new Date()
  const expiresAt = new Date(now.getTime() + 86_400_000)
  const user = randomUUID()
  const session = randomUUID()
  const sign = microseconds(() => tokens.issueRefreshToken(user, session, tokens.newRefreshJti(), now, expiresAt))
  const issued = Array.from({ length: iterations + 500 }, () =>
    tokens.issueRefreshToken(user, session, tokens.newRefreshJti(), now, expiresAt))
  let verified = 0
  const verify = microseconds((i) => {
    verifier.verify(issued[i], 'refresh')
    verified++
  })
  if (verified !== issued.length) throw new Error(`${algorithm}: ${verified}/${issued.length} tokens verified`)
  rows.push(`| ${algorithm} | ${sign.toFixed(1)} | ${verify.toFixed(1)} | ${(verify + 2 * sign).toFixed(1)} | ${verify.toFixed(1)} | ${(2 * sign).toFixed(1)} |`)
}

console.log(`${iterations} operations each, node ${process.version}\n`)
console.log('| algorithm | sign µs | verify µs | refresh: verify + 2 signs | logout: 1 verify | login: 2 signs |')
console.log('|---|---:|---:|---:|---:|---:|')
for (const row of rows) console.log(row)
