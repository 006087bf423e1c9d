// Machine clients (docs/clients.md): the services allowed to call the service-to-service
// endpoints, declared by the operator in SERVICE_CLIENTS_FILE. Only a hash of each secret is
// stored. Secrets are 256 random bits, so a plain SHA-256 is as safe as a slow password hash
// (nobody can search 2^256 inputs) and keeps client authentication cheap on every /introspect
// call; docs/decisions.md, "Machine clients", says more.
import * as nodeCrypto from 'node:crypto'
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { ConfigError } from '../config.js'

/** What a client may be granted, and the routes each one opens. */
export const SCOPES = ['introspect', 'sessions:admin', 'ssf.manage', 'ssf.read'] as const
export type Scope = (typeof SCOPES)[number]

export interface ServiceClient {
  readonly clientId: string
  /** Every scope the client may be granted, in file order. */
  readonly scopes: readonly Scope[]
}

/** One entry of SERVICE_CLIENTS_FILE, as `client -- create` prints it. */
export interface ServiceClientEntry {
  client_id: string
  client_secret_hash: string
  scope: string
}

export interface ServiceClients {
  /** The client of this id, if it is still declared. */
  get(clientId: string): ServiceClient | undefined
  /** The client whose id and secret these are, or undefined; constant time in the secret. */
  authenticate(clientId: string, secret: string): ServiceClient | undefined
  readonly size: number
}

/** A client id: what the CLI accepts as NAME and the file as `client_id` (safe in a Basic header). */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
const HASH_PREFIX = 'sha256:'
const HASH_PATTERN = /^sha256:[A-Za-z0-9_-]{43}$/
/** 32 bytes in base64url: the shortest secret `client -- hash` accepts. */
export const MIN_SECRET_LENGTH = 43
const ENTRY_MEMBERS = ['client_id', 'client_secret_hash', 'scope']

/** A fresh client secret: 256 random bits, base64url. */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url')
}

// crypto.hash (Node 20.12+) digests without a Hash object per call: cheaper on every
// authenticated /introspect. The same bytes as the createHash fallback for older Node 20 releases.
const oneShotHash: typeof nodeCrypto.hash | undefined = nodeCrypto.hash
const digestOf = oneShotHash
  ? (secret: string): Buffer => oneShotHash('sha256', secret, 'buffer')
  : (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest()

/** What the clients file stores instead of `secret`. */
export function hashClientSecret(secret: string): string {
  return HASH_PREFIX + digestOf(secret).toString('base64url')
}

/** The scopes of a space-separated list; throws naming the first unknown one. */
export function parseScopes(scope: string): Scope[] {
  const names = scope.split(' ').filter((name) => name !== '')
  for (const name of names) {
    if (!(SCOPES as readonly string[]).includes(name)) throw new ConfigError(`unknown scope "${name}" (known: ${SCOPES.join(', ')})`)
  }
  return [...new Set(names as Scope[])]
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function checkEntry(entry: unknown, index: number): ServiceClientEntry {
  const where = `clients[${index}]`
  if (!isPlainObject(entry)) throw new ConfigError(`${where} is not an object`)
  for (const member of Object.keys(entry)) {
    if (!ENTRY_MEMBERS.includes(member)) throw new ConfigError(`${where} has an unknown member "${member}"`)
  }
  for (const member of ENTRY_MEMBERS) {
    if (typeof entry[member] !== 'string') throw new ConfigError(`${where}.${member} is missing or not a string`)
  }
  const { client_id: clientId, client_secret_hash: hash, scope } = entry as unknown as ServiceClientEntry
  if (!CLIENT_ID_PATTERN.test(clientId)) {
    throw new ConfigError(`${where}.client_id must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`)
  }
  if (!HASH_PATTERN.test(hash)) {
    throw new ConfigError(`${where}.client_secret_hash is not a hash made by "npm run client" (it never holds a secret)`)
  }
  try {
    if (parseScopes(scope).length === 0) throw new ConfigError('no scope')
  } catch (err) {
    throw new ConfigError(`${where}.scope (client "${clientId}"): ${(err as Error).message}`)
  }
  return { client_id: clientId, client_secret_hash: hash, scope }
}

/** The clients of a file's text; throws a ConfigError naming the first problem. */
export function parseServiceClients(text: string): ServiceClients {
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch (err) {
    // V8 quotes the text around the error, newlines included: the message must stay one line.
    throw new ConfigError(`not valid JSON (${(err as Error).message.replace(/\s+/g, ' ')})`)
  }
  if (!isPlainObject(document) || !Array.isArray(document.clients)) throw new ConfigError('must be an object { "clients": [ ... ] }')
  for (const member of Object.keys(document)) {
    if (member !== 'clients') throw new ConfigError(`has an unknown member "${member}"`)
  }
  const byId = new Map<string, { client: ServiceClient, digest: Buffer }>()
  document.clients.forEach((raw, index) => {
    const entry = checkEntry(raw, index)
    if (byId.has(entry.client_id)) {
      throw new ConfigError(`client_id "${entry.client_id}" appears twice (to rotate a secret, add a new client, move over, then delete the old one)`)
    }
    const client = Object.freeze({ clientId: entry.client_id, scopes: Object.freeze(parseScopes(entry.scope)) })
    byId.set(entry.client_id, { client, digest: Buffer.from(entry.client_secret_hash.slice(HASH_PREFIX.length), 'base64url') })
  })
  return clientRegistry(byId)
}

// Compared against when the client id is unknown, so an unknown id costs what a wrong secret does.
const UNKNOWN_CLIENT_DIGEST = digestOf(generateClientSecret())

function clientRegistry(byId: ReadonlyMap<string, { client: ServiceClient, digest: Buffer }>): ServiceClients {
  return {
    get: (clientId) => byId.get(clientId)?.client,
    authenticate(clientId, secret) {
      const known = byId.get(clientId)
      const matches = timingSafeEqual(digestOf(secret), known?.digest ?? UNKNOWN_CLIENT_DIGEST)
      return known && matches ? known.client : undefined
    },
    size: byId.size
  }
}

export const NO_SERVICE_CLIENTS: ServiceClients = clientRegistry(new Map())

/** SERVICE_CLIENTS_FILE, read and checked at start-up; no file: no clients at all. */
export async function loadServiceClients(file: string | undefined): Promise<ServiceClients> {
  if (file === undefined) return NO_SERVICE_CLIENTS
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`SERVICE_CLIENTS_FILE "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  try {
    return parseServiceClients(text)
  } catch (err) {
    throw new ConfigError(`SERVICE_CLIENTS_FILE "${file}": ${(err as Error).message}`)
  }
}
