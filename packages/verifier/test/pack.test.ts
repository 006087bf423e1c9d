// The package as a downstream service gets it: `npm pack`, installed from the tarball into a
// project of its own (no TypeScript at run time, none of the auth service's dependencies), a
// downstream Fastify service run as a process against the real auth service, and its types checked
// by tsc as a consumer's. The npm registry is used only for what the downstream project installs
// (jose, fastify, fastify-plugin), from npm's cache when it has them.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { pack, PACKAGE, project, run, startDownstream } from './downstream.js'
import { eventually, hasTransmitter, logout, NO_TRANSMITTER, register, startAuth } from './support.js'

const ROOT = path.resolve(PACKAGE, '../..')

const work = mkdtempSync(path.join(tmpdir(), 'verifier-pack-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

t.test('npm pack, install from the tarball, run a downstream Fastify service', async (t) => {
  const { tarball, files } = await pack(work)
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts') && files.includes('dist/core.js') && files.includes('README.md'), 'compiled code, types and the README')
  t.notOk(files.some((file) => file.startsWith('src/') || file.startsWith('test/') || file.endsWith('.ts') && !file.endsWith('.d.ts')), 'no TypeScript source, no tests')
  const manifest = JSON.parse(readFileSync(path.join(PACKAGE, 'package.json'), 'utf8'))
  t.same(Object.keys(manifest.dependencies), ['jose'], 'one runtime dependency: jose')

  t.test('without Fastify: ./core imports, the root export needs fastify-plugin', async (t) => {
    const dir = await project(work, 'plain', [], tarball)
    t.same(readdirSync(path.join(dir, 'node_modules')).filter((name) => !name.startsWith('.')).sort(), ['@auth-service', 'jose'], 'installs jose and nothing else')
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e',
      "const m = await import('@auth-service/verifier/core'); console.log(typeof m.createVerifier, typeof m.VerifierError)"], { cwd: dir, timeout: 30_000 })
    t.equal(stdout.trim(), 'function function')
    const root = await run(process.execPath, ['--input-type=module', '-e', "await import('@auth-service/verifier')"], { cwd: dir, timeout: 30_000 })
      .then(() => 'imported', (error) => String(error.stderr))
    t.match(root, /fastify-plugin/, 'the root export names the missing peer')
  })

  t.test('the downstream service, a process: 200, then 401 after the logout', async (t) => {
    const dir = await project(work, 'downstream', ['fastify@5', 'fastify-plugin'], tarball)
    const auth = await startAuth(t, { env: { SSF_POLL_TIMEOUT: '2s' } })
    if (!(await hasTransmitter(auth))) {
      t.test('downstream', { skip: NO_TRANSMITTER }, () => {})
      return
    }
    const downstream = await startDownstream(t, dir, { issuer: auth.url, clientId: auth.client.clientId, clientSecret: auth.client.clientSecret })

    const session = await register(auth)
    const ok = await downstream.orders(session.accessToken)
    t.equal(ok.status, 200)
    t.same(ok.body, { sub: session.userId })
    t.equal(await logout(auth, session.accessToken), 204)
    const delay = await eventually(async () => (await downstream.orders(session.accessToken)).status === 401, 5_000, '401 after the logout')
    t.comment(`logout reached the downstream process in about ${delay} ms`)
    t.match((await downstream.orders(session.accessToken)).challenge, /^Bearer error="invalid_token"/)

    t.equal(await downstream.stop(), 0, 'closes cleanly on SIGTERM (the stream deleted)')
  })

  t.test("a consumer's TypeScript compiles against the installed types", async (t) => {
    const dir = await project(work, 'typed', ['fastify@5', 'fastify-plugin'], tarball)
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
