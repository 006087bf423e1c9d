// `npm run --silent client -- create NAME --scope "S1 S2"`: a new machine client. Prints one JSON
// line { client_id, client_secret, entry }: the secret (shown only this once) and the entry to
// add to SERVICE_CLIENTS_FILE. `npm run --silent client -- hash` reads a secret on stdin and
// prints its hash. Neither touches a database nor needs the service (docs/clients.md).
import { text } from 'node:stream/consumers'
import { parseArgs } from 'node:util'
import {
  CLIENT_ID_PATTERN,
  generateClientSecret,
  hashClientSecret,
  MIN_SECRET_LENGTH,
  parseScopes,
  SCOPES,
  type ServiceClientEntry
} from '../src/auth/service-clients.js'

const USAGE = `usage: npm run --silent client -- create NAME --scope "SCOPE ..."
       npm run --silent client -- hash < secret.txt
scopes: ${SCOPES.join(', ')}`

function fail(message: string): never {
  console.error(`client: ${message}\n${USAGE}`)
  process.exit(2)
}

function create(args: string[]): void {
  let parsed
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { scope: { type: 'string' } } })
  } catch (err) {
    fail((err as Error).message)
  }
  const [name, ...extra] = parsed.positionals
  if (!name || extra.length > 0) fail('create takes exactly one NAME')
  if (!CLIENT_ID_PATTERN.test(name)) fail('NAME must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit')
  if (parsed.values.scope === undefined) fail('--scope is required')
  let scopes
  try {
    scopes = parseScopes(parsed.values.scope)
  } catch (err) {
    fail((err as Error).message)
  }
  if (scopes.length === 0) fail('--scope names no scope')
  const secret = generateClientSecret()
  const entry: ServiceClientEntry = { client_id: name, client_secret_hash: hashClientSecret(secret), scope: scopes.join(' ') }
  console.log(JSON.stringify({ client_id: name, client_secret: secret, entry }))
}

async function hash(args: string[]): Promise<void> {
  if (args.length > 0) fail('hash takes no arguments: the secret comes on stdin')
  const secret = (await text(process.stdin)).replace(/\r?\n$/, '')
  if (secret.length < MIN_SECRET_LENGTH) fail(`a client secret has at least ${MIN_SECRET_LENGTH} characters (256 random bits, as create makes them)`)
  console.log(hashClientSecret(secret))
}

const [command, ...rest] = process.argv.slice(2)
if (command === 'create') create(rest)
else if (command === 'hash') await hash(rest)
else fail(command === undefined ? 'a command is required' : `unknown command "${command}"`)
