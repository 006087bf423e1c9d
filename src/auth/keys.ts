import { createHash, createPublicKey, createPrivateKey, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto'
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'

/** The JWS algorithms a key ring can sign with (JWT_ALGORITHM). */
export type SigningAlgorithm = 'EdDSA' | 'ES256' | 'HS256'

export interface PublicJwk {
  kty: string
  kid: string
  alg: SigningAlgorithm
  use: 'sig'
  crv?: string
  x?: string
  y?: string
}

/** A key that verifies tokens: a PEM public key, or the HS256 secret (fast-jwt takes strings). */
export interface VerificationKey {
  readonly kid: string
  readonly key: string
}

/**
 * Every key the service knows: the one that signs, and the retired ones that still verify the
 * tokens they signed until those expire (rotation: docs/operations.md, "Key material and rotation").
 */
export interface KeyRing {
  readonly algorithm: SigningAlgorithm
  readonly signingKid: string
  /** PEM (EdDSA, ES256) or the raw secret (HS256). */
  readonly signingKey: string
  /** Key for the keyed hash that chains refresh-token jtis (see services/tokens.ts). */
  readonly jtiChainKey: Buffer
  /** The verification key for a token's `kid`, or undefined for an unknown or missing kid. */
  verificationKey(kid: unknown): string | undefined
  /** Every key that verifies, the signing key's first. */
  readonly verificationKeys: readonly VerificationKey[]
  /** The JWKS document: public members only, and nothing at all for HS256. */
  readonly jwks: { keys: PublicJwk[] }
}

export interface KeyMaterial {
  readonly algorithm: SigningAlgorithm
  readonly privateKey?: string
  readonly privateKeyFile?: string
  readonly verifyKeys?: string
  readonly verifyKeysFile?: string
  readonly secret?: string
  /** REFRESH_CHAIN_SECRET: keys the refresh-jti chain independently of the signing key. */
  readonly chainSecret?: string
}

export interface KeyRingOptions {
  readonly dataDir: string
  /** In production a missing key is an error instead of a generated development key. */
  readonly isProduction: boolean
}

type AsymmetricAlgorithm = Exclude<SigningAlgorithm, 'HS256'>

export class KeyConfigError extends Error {
  override name = 'KeyConfigError'
}

const MIN_SECRET_BYTES = 32 // HS256 needs at least 256 bits (RFC 7518 §3.2)
const PEM_BLOCK = /-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g

export async function loadKeyRing(material: KeyMaterial, options: KeyRingOptions): Promise<KeyRing> {
  if (material.algorithm === 'HS256') return secretKeyRing(material)

  const signingPem = await loadSigningPem({ ...material, algorithm: material.algorithm }, options)
  const signing = toPrivateKey(signingPem, material.algorithm, 'JWT_PRIVATE_KEY')
  const retiredPems = await readOptional(material.verifyKeys, material.verifyKeysFile, 'JWT_VERIFY_KEYS')
  const retired = (retiredPems?.match(PEM_BLOCK) ?? []).map((pem) =>
    toPublicKey(pem, material.algorithm, 'JWT_VERIFY_KEYS')
  )

  const publicKeys = [createPublicKey(signing), ...retired]
  const byKid = new Map<string, VerificationKey>()
  const jwks: PublicJwk[] = []
  for (const publicKey of publicKeys) {
    const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>
    const kid = jwkThumbprint(jwk)
    if (byKid.has(kid)) continue
    byKid.set(kid, { kid, key: publicKey.export({ format: 'pem', type: 'spki' }).toString() })
    jwks.push({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, ...(jwk.y ? { y: jwk.y } : {}), kid, alg: material.algorithm, use: 'sig' })
  }

  const signingKid = jwks[0].kid
  return {
    algorithm: material.algorithm,
    signingKid,
    signingKey: signing.export({ format: 'pem', type: 'pkcs8' }).toString(),
    jtiChainKey: chainKey(material, signing.export({ format: 'der', type: 'pkcs8' })),
    verificationKey: (kid) => (typeof kid === 'string' ? byKid.get(kid)?.key : undefined),
    verificationKeys: [...byKid.values()],
    jwks: { keys: jwks }
  }
}

function secretKeyRing(material: KeyMaterial): KeyRing {
  if (!material.secret) {
    throw new KeyConfigError('JWT_SECRET is required when JWT_ALGORITHM=HS256')
  }
  const secret = Buffer.from(material.secret, 'utf8')
  if (secret.length < MIN_SECRET_BYTES) {
    throw new KeyConfigError(`JWT_SECRET must be at least ${MIN_SECRET_BYTES} bytes (256 bits) for HS256`)
  }
  const kid = jwkThumbprint({ kty: 'oct', k: secret.toString('base64url') })
  return {
    algorithm: 'HS256',
    signingKid: kid,
    signingKey: material.secret,
    jtiChainKey: chainKey(material, secret),
    verificationKey: (candidate) => (candidate === kid ? material.secret : undefined),
    verificationKeys: [{ kid, key: material.secret }],
    // A shared secret is never published.
    jwks: { keys: [] }
  }
}

async function loadSigningPem(material: KeyMaterial & { algorithm: AsymmetricAlgorithm }, options: KeyRingOptions): Promise<string> {
  const configured = await readOptional(material.privateKey, material.privateKeyFile, 'JWT_PRIVATE_KEY')
  if (configured) return configured
  if (options.isProduction) {
    throw new KeyConfigError('JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE is required when NODE_ENV=production')
  }
  return developmentKey(material.algorithm, options.dataDir)
}

/**
 * Outside production, with no key configured, a key is generated once and kept in DATA_DIR, so
 * restarts and instances sharing DATA_DIR keep verifying each other's tokens.
 */
async function developmentKey(algorithm: AsymmetricAlgorithm, dataDir: string): Promise<string> {
  const file = path.join(dataDir, `dev-signing-key-${algorithm.toLowerCase()}.pem`)
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(dataDir, { recursive: true })
  const pem = generateSigningKeyPem(algorithm)
  // Written whole under a private name, then linked into place: link() fails if another
  // instance (or cluster worker) got there first, and then that one's key wins. Nobody ever
  // reads a half-written key.
  const draft = `${file}.${process.pid}.${Date.now()}.tmp`
  await writeFile(draft, pem, { flag: 'wx', mode: 0o600 })
  try {
    await link(draft, file)
    return pem
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return readFile(file, 'utf8')
  } finally {
    await unlink(draft).catch(() => {})
  }
}

export function generateSigningKeyPem(algorithm: AsymmetricAlgorithm): string {
  const { privateKey } =
    algorithm === 'EdDSA'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
}

async function readOptional(inline: string | undefined, file: string | undefined, name: string): Promise<string | undefined> {
  if (inline) return inline.replace(/\\n/g, '\n')
  if (!file) return undefined
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new KeyConfigError(`${name}_FILE cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
}

function toPrivateKey(pem: string, algorithm: SigningAlgorithm, name: string): KeyObject {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch {
    throw new KeyConfigError(`${name} is not a PEM private key`)
  }
  assertKeyFits(key, algorithm, name)
  return key
}

function toPublicKey(pem: string, algorithm: SigningAlgorithm, name: string): KeyObject {
  let key: KeyObject
  try {
    key = createPublicKey(pem) // also accepts a private key and derives its public half
  } catch {
    throw new KeyConfigError(`${name} holds something that is not a PEM key`)
  }
  assertKeyFits(key, algorithm, name)
  return key
}

function assertKeyFits(key: KeyObject, algorithm: SigningAlgorithm, name: string): void {
  const fits =
    algorithm === 'EdDSA'
      ? key.asymmetricKeyType === 'ed25519'
      : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
  if (!fits) {
    const wanted = algorithm === 'EdDSA' ? 'an Ed25519 key' : 'an EC P-256 key'
    throw new KeyConfigError(`${name} must be ${wanted} for JWT_ALGORITHM=${algorithm}`)
  }
}

/** RFC 7638 JWK thumbprint: the kid is derived from the key, so every instance agrees on it. */
export function jwkThumbprint(jwk: Record<string, string | undefined>): string {
  const members: Record<string, string[]> = {
    OKP: ['crv', 'kty', 'x'],
    EC: ['crv', 'kty', 'x', 'y'],
    oct: ['k', 'kty']
  }
  const required = members[jwk.kty as string]
  const canonical = JSON.stringify(Object.fromEntries(required.map((name) => [name, jwk[name]])))
  return createHash('sha256').update(canonical).digest('base64url')
}

/**
 * The refresh-jti chain key comes from REFRESH_CHAIN_SECRET when set, else from the signing key.
 * With the secret set, changing the signing key (rotation) leaves every chain intact; without it,
 * a grace-window retry that straddles the switch is treated as reuse (docs/operations.md, "Key material and rotation").
 */
function chainKey(material: KeyMaterial, signingMaterial: Buffer): Buffer {
  if (material.chainSecret === undefined) return deriveChainKey(signingMaterial)
  const secret = Buffer.from(material.chainSecret, 'utf8')
  if (secret.length < MIN_SECRET_BYTES) {
    throw new KeyConfigError(`REFRESH_CHAIN_SECRET must be at least ${MIN_SECRET_BYTES} bytes`)
  }
  return deriveChainKey(secret)
}

function deriveChainKey(material: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), 'auth-service refresh jti chain', 32))
}
