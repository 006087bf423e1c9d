// The package as a downstream service gets it: `npm pack`, installed from the tarball into a
// project of its own (no TypeScript at run time, none of the auth service's dependencies), a
// downstream Fastify service run as a process against the real auth service, and its types checked
// by tsc as a consumer's. The npm registry is used only for what the downstream project installs
// (jose, fastify, fastify-plugin), from npm's cache when it has them.
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { eventually, hasTransmitter, logout, NO_TRANSMITTER, register, startAuth } from './support.js'

const run = promisify(execFile)
const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const ROOT = path.resolve(PACKAGE, '../..')
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

const work = mkdtempSync(path.join(tmpdir(), 'verifier-pack-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

async function npm(cwd: string, args: string[]) {
  return run(NPM, args, { cwd, timeout: 120_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } })
}

async function project(name: string, dependencies: string[], tarball: string): Promise<string> {
  const dir = path.join(work, name)
  await run('mkdir', ['-p', dir])
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }))
  await npm(dir, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, ...dependencies])
  return dir
}

t.test('npm pack, install from the tarball, run a downstream Fastify service', async (t) => {
  const { stdout } = await npm(PACKAGE, ['pack', '--json', '--pack-destination', work])
  const packed = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = packed[0].files.map((file) => file.path).sort()
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts') && files.includes('dist/core.js') && files.includes('README.md'), 'compiled code, types and the README')
  t.notOk(files.some((file) => file.startsWith('src/') || file.startsWith('test/') || file.endsWith('.ts') && !file.endsWith('.d.ts')), 'no TypeScript source, no tests')
  const tarball = path.join(work, packed[0].filename)
  const manifest = JSON.parse(readFileSync(path.join(PACKAGE, 'package.json'), 'utf8'))
  t.same(Object.keys(manifest.dependencies), ['jose'], 'one runtime dependency: jose')

  t.test('without Fastify: ./core imports, the root export needs fastify-plugin', async (t) => {
    const dir = await project('plain', [], tarball)
    t.same(readdirSync(path.join(dir, 'node_modules')).filter((name) => !name.startsWith('.')).sort(), ['@auth-service', 'jose'], 'installs jose and nothing else')
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e',
      "const m = await import('@auth-service/verifier/core'); console.log(typeof m.createVerifier, typeof m.VerifierError)"], { cwd: dir, timeout: 30_000 })
    t.equal(stdout.trim(), 'function function')
    const root = await run(process.execPath, ['--input-type=module', '-e', "await import('@auth-service/verifier')"], { cwd: dir, timeout: 30_000 })
      .then(() => 'imported', (error) => String(error.stderr))
    t.match(root, /fastify-plugin/, 'the root export names the missing peer')
  })

  t.test('the downstream service, a process: 200, then 401 after the logout', async (t) => {
    const dir = await project('downstream', ['fastify@5', 'fastify-plugin'], tarball)
    const auth = await startAuth(t, { env: { SSF_POLL_TIMEOUT: '2s' } })
    if (!(await hasTransmitter(auth))) {
      t.test('downstream', { skip: NO_TRANSMITTER }, () => {})
      return
    }
    writeFileSync(path.join(dir, 'server.js'), `
import Fastify from 'fastify'
import authVerifier from '@auth-service/verifier'

const app = Fastify()
await app.register(authVerifier, {
  issuer: process.env.ISSUER, audience: 'api',
  clientId: process.env.CLIENT_ID, clientSecret: process.env.CLIENT_SECRET
})
app.get('/orders', { onRequest: app.requireAuth }, async (request) => ({ sub: request.auth.sub }))
await app.listen({ host: '127.0.0.1', port: 0 })
console.log(JSON.stringify({ port: app.server.address().port }))
process.once('SIGTERM', () => app.close().then(() => process.exit(0)))
`)
    const child = spawn(process.execPath, ['server.js'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ISSUER: auth.url, CLIENT_ID: auth.client.clientId, CLIENT_SECRET: auth.client.clientSecret },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    const exited = new Promise((resolve) => child.once('exit', resolve))
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(timer)
      }
    })
    await eventually(() => output.includes('"port"') || child.exitCode !== null, 20_000, `the downstream service listening: ${output}`)
    t.equal(child.exitCode, null, `running: ${output}`)
    const port = JSON.parse(output.slice(output.indexOf('{'), output.indexOf('}') + 1)).port
    const orders = (token: string) => fetch(`http://127.0.0.1:${port}/orders`, { headers: { authorization: `Bearer ${token}` } })

    const session = await register(auth)
    const ok = await orders(session.accessToken)
    t.equal(ok.status, 200)
    t.same(await ok.json(), { sub: session.userId })
    t.equal(await logout(auth, session.accessToken), 204)
    const logoutAt = Date.now()
    await eventually(async () => (await orders(session.accessToken)).status === 401, 5_000, '401 after the logout')
    t.comment(`logout reached the downstream process in about ${Date.now() - logoutAt} ms`)
    const refused = await orders(session.accessToken)
    t.match(refused.headers.get('www-authenticate'), /^Bearer error="invalid_token"/)
    await refused.arrayBuffer()

    child.kill('SIGTERM')
    t.equal(await exited, 0, 'closes cleanly on SIGTERM (the stream deleted)')
  })

  t.test("a consumer's TypeScript compiles against the installed types", async (t) => {
    const dir = await project('typed', ['fastify@5', 'fastify-plugin'], tarball)
    writeFileSync(path.join(dir, 'consumer.ts'), `
import Fastify from 'fastify'
import authVerifier, { VerifierError, type AccessTokenClaims } from '@auth-service/verifier'
import { createVerifier, type Verifier, type VerifierStatus } from '@auth-service/verifier/core'

const app = Fastify()
await app.register(authVerifier, { issuer: 'https://auth.example.com', audience: 'api', clientId: 'c', clientSecret: 's' })
app.get('/orders', { onRequest: app.requireAuth }, async (request) => {
  const sub: string = request.auth.sub
  return { sub, sid: request.auth.sid }
})
const verifier: Verifier = createVerifier({ issuer: 'https://auth.example.com', audience: 'api', clientId: 'c', clientSecret: 's', fallback: 'introspect' })
const claims: AccessTokenClaims = await verifier.verify('token').catch((error: unknown) => {
  if (error instanceof VerifierError && error.statusCode === 503) throw error
  throw error
})
const status: VerifierStatus = verifier.status
export { claims, status }
`)
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true,
        skipLibCheck: false, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules/@types')]
      },
      files: ['consumer.ts']
    }))
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc')
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, timeout: 120_000 }).then(() => '', (error) => `${error.stdout}${error.stderr}`)
    t.equal(result, '', 'tsc --strict, skipLibCheck false: no errors')
  })
})
