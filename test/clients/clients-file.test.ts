// SERVICE_CLIENTS_FILE at start-up (docs/clients.md): a file that does not parse, an unknown
// member, a duplicate client_id, an unknown or empty scope, a bad client_id, a "hash" that is not
// one or a file that cannot be read stops the start with one line naming the problem. Without the
// variable there are no clients and every machine endpoint answers 401.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { generateClientSecret, hashClientSecret, loadServiceClients, parseServiceClients } from '../../src/auth/service-clients.js'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import {
  API_PREFIX,
  basicAuth,
  bearer,
  buildTestApp,
  clientEntry,
  decodeJwt,
  form,
  registerUser,
  signWith,
  testClient
} from '../helper.js'
import { freePort, startServer } from '../support/server-process.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const dir = mkdtempSync(path.join(tmpdir(), 'auth-clients-file-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const good = testClient('introspect sessions:admin', 'billing')
const entry = clientEntry(good)
/** A file's text as an operator writes it: pretty-printed, several lines. */
const pretty = (document: unknown) => JSON.stringify(document, null, 2) + '\n'

function writeClientsFile(text: string): string {
  const file = path.join(dir, `${randomUUID()}.json`)
  writeFileSync(file, text)
  return file
}

/** Every refused file: its text, and what the one line must name. */
const REFUSED: Record<string, { text: string, names: RegExp }> = {
  'unparsable JSON (pretty-printed, the error on a later line)': {
    text: pretty({ clients: [entry] }).replace('"scope"', 'scope'),
    names: /not valid JSON/
  },
  // V8 quotes the text around the error, newlines and all: the line must still be one.
  'unparsable JSON (a trailing comma, the commonest slip)': {
    text: pretty({ clients: [entry] }).replace(/\}\n {2}\]/, '},\n  ]'),
    names: /not valid JSON/
  },
  'unparsable JSON (empty file)': { text: '', names: /not valid JSON/ },
  'unparsable JSON (trailing garbage)': { text: `${JSON.stringify({ clients: [] })}\nclients: []\n`, names: /not valid JSON/ },
  'not an object with clients': { text: pretty([entry]), names: /must be an object \{ "clients": \[ \.\.\. \] \}/ },
  'clients is not an array': { text: pretty({ clients: entry }), names: /must be an object \{ "clients"/ },
  'unknown member at the top level': { text: pretty({ clients: [entry], version: 1 }), names: /unknown member "version"/ },
  'unknown member in an entry': {
    text: pretty({ clients: [{ ...entry, client_secret: good.secret }] }),
    names: /clients\[0\] has an unknown member "client_secret"/
  },
  'an entry that is not an object': { text: pretty({ clients: [entry, 'billing'] }), names: /clients\[1\] is not an object/ },
  'a missing member': { text: pretty({ clients: [{ client_id: 'billing', scope: 'introspect' }] }), names: /clients\[0\]\.client_secret_hash is missing/ },
  'a member that is not a string': { text: pretty({ clients: [{ ...entry, scope: ['introspect'] }] }), names: /clients\[0\]\.scope is missing or not a string/ },
  'duplicate client_id': {
    text: pretty({ clients: [entry, clientEntry({ ...good, secret: generateClientSecret() })] }),
    names: /client_id "billing" appears twice/
  },
  'unknown scope': {
    text: pretty({ clients: [{ ...entry, scope: 'introspect sessions:write' }] }),
    names: /clients\[0\]\.scope \(client "billing"\): unknown scope "sessions:write"/
  },
  'empty scope': { text: pretty({ clients: [{ ...entry, scope: '' }] }), names: /clients\[0\]\.scope \(client "billing"\)/ },
  'a scope of spaces only': { text: pretty({ clients: [{ ...entry, scope: '   ' }] }), names: /clients\[0\]\.scope \(client "billing"\)/ },
  'client_id with a space': { text: pretty({ clients: [{ ...entry, client_id: 'bill ing' }] }), names: /clients\[0\]\.client_id must be/ },
  'client_id with a colon (breaks Basic)': { text: pretty({ clients: [{ ...entry, client_id: 'bill:ing' }] }), names: /clients\[0\]\.client_id must be/ },
  'client_id starting with a dot': { text: pretty({ clients: [{ ...entry, client_id: '.billing' }] }), names: /clients\[0\]\.client_id must be/ },
  'empty client_id': { text: pretty({ clients: [{ ...entry, client_id: '' }] }), names: /clients\[0\]\.client_id must be/ },
  'client_id of 65 characters': { text: pretty({ clients: [{ ...entry, client_id: 'a'.repeat(65) }] }), names: /clients\[0\]\.client_id must be/ },
  'a plain secret as client_secret_hash': {
    text: pretty({ clients: [{ ...entry, client_secret_hash: good.secret }] }),
    names: /clients\[0\]\.client_secret_hash is not a hash made by "npm run client"/
  },
  'a hash of the wrong length': {
    text: pretty({ clients: [{ ...entry, client_secret_hash: entry.client_secret_hash.slice(0, -1) }] }),
    names: /clients\[0\]\.client_secret_hash is not a hash/
  },
  'a hash of another algorithm': {
    text: pretty({ clients: [{ ...entry, client_secret_hash: entry.client_secret_hash.replace('sha256:', 'md5:') }] }),
    names: /clients\[0\]\.client_secret_hash is not a hash/
  }
}

t.test('parseServiceClients refuses every bad file with a ConfigError of one line naming the problem', async (t) => {
  for (const [name, { text, names }] of Object.entries(REFUSED)) {
    let error: unknown
    try {
      parseServiceClients(text)
    } catch (err) {
      error = err
    }
    t.type(error, ConfigError, `${name}: a ConfigError`)
    const message = (error as Error | undefined)?.message ?? ''
    t.match(message, names, `${name}: names the problem (${message})`)
    t.notMatch(message, /[\r\n]/, `${name}: one line`)
    t.notOk(message.includes(good.secret), `${name}: never quotes a secret`)
  }
})

t.test('a good file: its clients, each authenticated by its own secret only', async (t) => {
  const other = testClient('ssf.read ssf.manage', 'ssf-receiver')
  const clients = parseServiceClients(pretty({ clients: [entry, clientEntry(other)] }))
  t.equal(clients.size, 2)
  t.same(clients.get('billing'), { clientId: 'billing', scopes: ['introspect', 'sessions:admin'] })
  t.same(clients.get('ssf-receiver')?.scopes, ['ssf.read', 'ssf.manage'], 'scopes in file order')
  t.equal(clients.get('nobody'), undefined)
  t.equal(clients.authenticate('billing', good.secret)?.clientId, 'billing')
  t.equal(clients.authenticate('ssf-receiver', other.secret)?.clientId, 'ssf-receiver')
  t.equal(clients.authenticate('billing', other.secret), undefined, "another client's secret")
  t.equal(clients.authenticate('billing', good.secret.slice(0, -1)), undefined, 'a prefix of the secret')
  t.equal(clients.authenticate('billing', entry.client_secret_hash), undefined, 'the hash itself is not the secret')
  t.equal(clients.authenticate('nobody', good.secret), undefined, 'an unknown client')
  t.equal(parseServiceClients('{"clients":[]}').size, 0, 'an empty list is allowed: no clients')
  t.equal(parseServiceClients(pretty({ clients: [{ ...entry, scope: 'introspect introspect' }] })).get('billing')?.scopes.length, 1, 'a repeated scope counts once')
  t.equal(hashClientSecret(good.secret), entry.client_secret_hash)
})

t.test('loadServiceClients: no variable, no clients; a missing file or bad content names the variable and the file', async (t) => {
  t.equal((await loadServiceClients(undefined)).size, 0)
  const missing = path.join(dir, 'does-not-exist.json')
  await t.rejects(loadServiceClients(missing), { name: 'ConfigError', message: `SERVICE_CLIENTS_FILE "${missing}" cannot be read (ENOENT)` })
  await t.rejects(loadServiceClients(dir), { name: 'ConfigError', message: /SERVICE_CLIENTS_FILE ".*" cannot be read \(EISDIR\)/ }, 'a directory')
  const duplicate = writeClientsFile(REFUSED['duplicate client_id'].text)
  await t.rejects(loadServiceClients(duplicate), { name: 'ConfigError', message: new RegExp(`^SERVICE_CLIENTS_FILE "${duplicate}": client_id "billing" appears twice`) })
  t.equal((await loadServiceClients(writeClientsFile(pretty({ clients: [entry] })))).get('billing')?.clientId, 'billing')
})

t.test('buildApp refuses a bad file before it opens anything', async (t) => {
  for (const name of ['unknown scope', 'a plain secret as client_secret_hash']) {
    const dataDir = path.join(dir, `data-${randomUUID()}`)
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      DATA_DIR: dataDir,
      SERVICE_CLIENTS_FILE: writeClientsFile(REFUSED[name].text),
      ...(process.env.TEST_DATABASE_URL ? { DATABASE_URL: process.env.TEST_DATABASE_URL } : {})
    })
    await t.rejects(buildApp(config), { name: 'ConfigError', message: /^SERVICE_CLIENTS_FILE ".*": clients\[0\]/ }, name)
    t.notOk(existsSync(dataDir), `${name}: DATA_DIR was not even created`)
  }
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: path.join(dir, 'never'), SERVICE_CLIENTS_FILE: path.join(dir, 'nope.json') })
  await t.rejects(buildApp(config), { name: 'ConfigError', message: /cannot be read \(ENOENT\)/ }, 'a file that does not exist')
})

t.test('without SERVICE_CLIENTS_FILE every machine endpoint answers 401', async (t) => {
  const { app, privateKeyPem } = await buildTestApp(t)
  t.equal(app.serviceClients.size, 0)
  const tokenForm = form({ grant_type: 'client_credentials' })
  const postForm = form({ grant_type: 'client_credentials', client_id: good.clientId, client_secret: good.secret })
  const introspectForm = form({ token: (await registerUser(app)).access_token })
  // A machine token signed with the service's own key, for a client no file declares.
  const user = decodeJwt((await registerUser(app)).access_token)
  const { header } = user
  const now = Math.floor(Date.now() / 1000)
  const issuer = user.payload.iss
  const forged = signWith(privateKeyPem, header, {
    iss: issuer, aud: issuer, sub: good.clientId, client_id: good.clientId, scope: 'introspect sessions:admin', jti: randomUUID(), iat: now, exp: now + 900
  })
  const requests = {
    'POST /token, Basic': { method: 'POST', url: `${API_PREFIX}/token`, payload: tokenForm.payload, headers: { ...tokenForm.headers, ...basicAuth(good) } },
    'POST /token, client_secret_post': { method: 'POST', url: `${API_PREFIX}/token`, ...postForm },
    'POST /token, no credentials': { method: 'POST', url: `${API_PREFIX}/token`, ...tokenForm },
    'POST /introspect, Basic': { method: 'POST', url: `${API_PREFIX}/introspect`, payload: introspectForm.payload, headers: { ...introspectForm.headers, ...basicAuth(good) } },
    'POST /introspect, Bearer': { method: 'POST', url: `${API_PREFIX}/introspect`, payload: introspectForm.payload, headers: { ...introspectForm.headers, ...bearer(forged) } },
    'POST /introspect, nothing': { method: 'POST', url: `${API_PREFIX}/introspect`, ...introspectForm },
    'GET /admin/users, Bearer': { method: 'GET', url: `${API_PREFIX}/admin/users?email=a@example.com`, headers: bearer(forged) },
    'GET /admin/users, nothing': { method: 'GET', url: `${API_PREFIX}/admin/users?email=a@example.com` },
    'POST /admin/users/:id/disable, Bearer': { method: 'POST', url: `${API_PREFIX}/admin/users/${randomUUID()}/disable`, headers: bearer(forged) }
  } as const
  for (const [name, request] of Object.entries(requests)) {
    const res = await app.inject(request)
    t.equal(res.statusCode, 401, name)
    t.ok(res.headers['www-authenticate'], `${name}: WWW-Authenticate`)
  }
  // The forged token is genuine but for its client: with the client declared, it opens the door.
  const forgedIsGenuine = await buildTestApp(t, { clients: [good], env: { JWT_PRIVATE_KEY: privateKeyPem } })
  t.equal((await forgedIsGenuine.app.inject(requests['GET /admin/users, Bearer'])).statusCode, 404, 'the same token with the client declared: past the 401')
})

/**
 * Runs src/server.ts with `env` until it exits; its exit code, stdout and stderr. Killed after
 * 60 s: a bad file is refused before anything starts, but loading the service through tsx takes
 * four such processes over 20 s on two busy cores (seen once in CI, beside two test files).
 */
function runServer(env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', HOST: '127.0.0.1', LOG_LEVEL: 'info', RATE_LIMIT: 'off', SESSION_CLEANUP_INTERVAL: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

t.test('a process started with a bad file exits non-zero with exactly one line on stderr', async (t) => {
  const cases: Record<string, { file: string, names: RegExp }> = {
    'unparsable JSON': { file: writeClientsFile(REFUSED['unparsable JSON (pretty-printed, the error on a later line)'].text), names: /not valid JSON/ },
    'a trailing comma': { file: writeClientsFile(REFUSED['unparsable JSON (a trailing comma, the commonest slip)'].text), names: /not valid JSON/ },
    'duplicate client_id': { file: writeClientsFile(REFUSED['duplicate client_id'].text), names: /client_id "billing" appears twice/ },
    'a file that does not exist': { file: path.join(dir, 'missing.json'), names: /cannot be read \(ENOENT\)/ }
  }
  await Promise.all(Object.entries(cases).map(async ([name, { file, names }]) => {
    const dataDir = path.join(dir, `server-${randomUUID()}`)
    const { code, stdout, stderr } = await runServer({ PORT: String(await freePort()), DATA_DIR: dataDir, SERVICE_CLIENTS_FILE: file })
    t.not(code, 0, `${name}: exits non-zero`)
    t.not(code, null, `${name}: exits by itself (not killed at the time limit)`)
    const lines = stderr.split('\n').filter((line) => line !== '')
    t.equal(lines.length, 1, `${name}: exactly one line on stderr (${JSON.stringify(stderr)})`)
    t.ok(stderr.endsWith('\n'), `${name}: a whole line`)
    t.match(lines[0], /^Cannot start: SERVICE_CLIENTS_FILE "/, `${name}: names the variable`)
    t.ok(lines[0].includes(file), `${name}: names the file`)
    t.match(lines[0], names, `${name}: names the problem`)
    t.equal(stdout, '', `${name}: nothing on stdout`)
    t.notOk(existsSync(dataDir), `${name}: nothing was created`)
  }))
})

t.test('a process started with a good file serves its clients over HTTP', async (t) => {
  const databaseUrl = process.env.TEST_DATABASE_URL
  const clientsDir = path.join(dir, 'server-good')
  mkdirSync(clientsDir)
  const file = path.join(clientsDir, 'clients.json')
  writeFileSync(file, pretty({ clients: [entry] }))
  const server = await startServer({
    JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA'),
    SERVICE_CLIENTS_FILE: file,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {})
  })
  t.teardown(() => server.stop(5_000))
  const post = (headers: Record<string, string>) =>
    fetch(`${server.url}${API_PREFIX}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: 'grant_type=client_credentials'
    })
  const res = await post(basicAuth(good))
  t.equal(res.status, 200)
  const body = await res.json() as { scope: string, access_token: string }
  t.equal(body.scope, 'introspect sessions:admin')
  const metadata = await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json() as { issuer: string }
  t.equal(decodeJwt(body.access_token).payload.iss, metadata.issuer, 'the token names the issuer the metadata does')
  t.equal((await post(basicAuth({ ...good, secret: generateClientSecret() }))).status, 401, 'a wrong secret')
  t.equal(await server.stop(5_000), 0, 'and it stops cleanly')
})
