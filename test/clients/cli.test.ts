// `npm run --silent client -- create NAME --scope "..."` and `client -- hash` (docs/clients.md):
// one JSON line with a fresh 256-bit secret and the entry for SERVICE_CLIENTS_FILE; the hash of a
// secret on stdin; usage errors exit 2 with a message on stderr and nothing on stdout. No
// database, no running service: it works with none reachable and creates nothing.
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { parseServiceClients } from '../../src/auth/service-clients.js'
import { API_PREFIX, basicAuth, buildTestApp, decodeJwt, form } from '../helper.js'
import { freePort } from '../support/server-process.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const dir = mkdtempSync(path.join(tmpdir(), 'auth-client-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

// Where a database would be if the CLI looked for one: a closed port and a directory that does not exist.
const closedPort = await freePort()
const missingDataDir = path.join(dir, 'no-such-data-dir')
const ENV = {
  PATH: process.env.PATH ?? '',
  DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/postgres`,
  DATA_DIR: missingDataDir
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

// The script resolves its imports from its own path, so it runs from any working directory:
// here an empty one, to see that it writes nothing.
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href
const script = (args: string[]) => ['--import', TSX, path.join(ROOT, 'scripts/client.ts'), ...args]

/** `node --import tsx scripts/client.ts ...args` with `stdin`, at most 20 s. */
function run(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, script(args), { cwd: dir, env: ENV, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(stdin)
  })
}
interface Created {
  client_id: string
  client_secret: string
  entry: { client_id: string, client_secret_hash: string, scope: string }
}

/** A successful `create`: exactly one JSON line on stdout, nothing on stderr. */
function created(t: Test, result: Run): Created {
  t.equal(result.code, 0, `exit 0 (${result.stderr})`)
  t.equal(result.stderr, '', 'nothing on stderr')
  t.ok(result.stdout.endsWith('\n'), 'a whole line')
  const lines = result.stdout.split('\n').filter((line) => line !== '')
  t.equal(lines.length, 1, 'exactly one line')
  return JSON.parse(lines[0])
}

const [first, second, third] = await Promise.all([
  run(['create', 'billing', '--scope', 'introspect sessions:admin']),
  run(['create', 'billing', '--scope', 'introspect sessions:admin']),
  run(['create', 'support.tool_2-x', '--scope=sessions:admin'])
])

t.test('create prints one JSON line { client_id, client_secret, entry }', async (t) => {
  const out = created(t, first)
  t.same(Object.keys(out), ['client_id', 'client_secret', 'entry'])
  t.equal(out.client_id, 'billing')
  t.same(Object.keys(out.entry), ['client_id', 'client_secret_hash', 'scope'], 'the entry has exactly the members the file takes')
  t.equal(out.entry.client_id, 'billing')
  t.equal(out.entry.scope, 'introspect sessions:admin')
  t.match(out.client_secret, /^[A-Za-z0-9_-]{43,}$/, 'base64url, at least 43 characters')
  t.ok(Buffer.from(out.client_secret, 'base64url').length >= 32, 'at least 256 bits')
  t.notOk(out.entry.client_secret_hash.includes(out.client_secret), 'the entry does not hold the secret')
  t.notOk(JSON.stringify(out.entry).includes(out.client_secret), 'nowhere in the entry')
  const other = created(t, third)
  t.equal(other.client_id, 'support.tool_2-x')
  t.equal(other.entry.scope, 'sessions:admin', '--scope=... works too')
})

t.test('every run makes a new secret', async (t) => {
  const a = created(t, first)
  const b = created(t, second)
  const c = created(t, third)
  t.equal(new Set([a.client_secret, b.client_secret, c.client_secret]).size, 3, 'three distinct secrets')
  t.not(a.entry.client_secret_hash, b.entry.client_secret_hash, 'and distinct hashes for the same name')
})

t.test('the entry, written to a clients file, gets a token with the printed secret', async (t) => {
  const a = created(t, first)
  const support = created(t, third)
  const file = path.join(dir, 'clients.json')
  writeFileSync(file, JSON.stringify({ clients: [a.entry, support.entry] }, null, 2))
  const withFile = await buildTestApp(t, { env: { SERVICE_CLIENTS_FILE: file } })
  const token = (clientId: string, secret: string) => {
    const body = form({ grant_type: 'client_credentials' })
    return withFile.app.inject({ method: 'POST', url: `${API_PREFIX}/token`, payload: body.payload, headers: { ...body.headers, ...basicAuth({ clientId, secret }) } })
  }
  const res = await token(a.client_id, a.client_secret)
  t.equal(res.statusCode, 200)
  t.equal(res.json().scope, 'introspect sessions:admin')
  t.equal(decodeJwt(res.json().access_token).payload.client_id, 'billing')
  const other = await token(support.client_id, support.client_secret)
  t.equal(other.statusCode, 200)
  t.equal(other.json().scope, 'sessions:admin')
  t.equal((await token(a.client_id, support.client_secret)).statusCode, 401, "another client's secret is refused")
  t.equal((await token(a.client_id, created(t, second).client_secret)).statusCode, 401, 'so is the secret of another run for the same name')
})

t.test('hash reads a secret on stdin and prints the hash the entry holds', async (t) => {
  const a = created(t, first)
  const [withNewline, bare] = await Promise.all([run(['hash'], `${a.client_secret}\n`), run(['hash'], a.client_secret)])
  for (const [name, result] of [['with a newline', withNewline], ['without a newline', bare]] as const) {
    t.equal(result.code, 0, `${name}: exit 0`)
    t.equal(result.stderr, '', `${name}: nothing on stderr`)
    t.equal(result.stdout, `${a.entry.client_secret_hash}\n`, `${name}: exactly the entry's hash, one line`)
  }
  t.equal(parseServiceClients(JSON.stringify({ clients: [{ ...a.entry, client_secret_hash: bare.stdout.trim() }] })).authenticate('billing', a.client_secret)?.clientId, 'billing', 'the hash authenticates the secret')
})

t.test('npm run --silent client -- create: the documented command line', async (t) => {
  const result = await new Promise<Run>((resolve) => {
    execFile('npm', ['run', '--silent', 'client', '--', 'create', 'via-npm', '--scope', 'introspect sessions:admin'], { cwd: ROOT, env: { ...ENV, HOME: process.env.HOME ?? dir }, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }))
  })
  const out = created(t, result)
  t.equal(out.client_id, 'via-npm')
  t.equal(out.entry.scope, 'introspect sessions:admin')
})

t.test('usage errors: exit 2, a message on stderr, nothing on stdout', async (t) => {
  const cases: Record<string, { args: string[], stdin?: string, says: RegExp }> = {
    'a NAME with a space': { args: ['create', 'bad name', '--scope', 'introspect'], says: /NAME must be/ },
    'a NAME with a colon (it would break Basic)': { args: ['create', 'bad:name', '--scope', 'introspect'], says: /NAME must be/ },
    'no NAME': { args: ['create', '--scope', 'introspect'], says: /exactly one NAME/ },
    'an unknown scope': { args: ['create', 'billing', '--scope', 'introspect admin'], says: /unknown scope "admin"/ },
    'missing --scope': { args: ['create', 'billing'], says: /--scope is required/ },
    'an empty --scope': { args: ['create', 'billing', '--scope', '  '], says: /--scope names no scope/ },
    'a short secret on hash': { args: ['hash'], stdin: 'too-short\n', says: /at least 43 characters/ },
    'an unknown command': { args: ['delete', 'billing'], says: /unknown command "delete"/ }
  }
  const results = await Promise.all(Object.values(cases).map(({ args, stdin }) => run(args, stdin)))
  for (const [index, [name, { says }]] of Object.entries(cases).entries()) {
    const result = results[index]
    t.equal(result.code, 2, `${name}: exit 2`)
    t.equal(result.stdout, '', `${name}: nothing on stdout`)
    t.match(result.stderr, says, `${name}: says why`)
    t.match(result.stderr, /usage: npm run --silent client/, `${name}: and shows the usage`)
  }
})

t.test('no database is touched and nothing is created', async (t) => {
  t.notOk(existsSync(missingDataDir), 'DATA_DIR still does not exist')
  t.same(readdirSync(dir).filter((name) => name !== 'clients.json'), [], 'nothing was written to the working directory')
})
