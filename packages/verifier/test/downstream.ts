// A downstream service as its team would run it: the package packed with `npm pack`, installed from
// the tarball into a project of its own (none of the auth service's dependencies, no TypeScript at
// run time), and a small Fastify server of that project run as a process on 127.0.0.1.
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import type { VerifierStatus } from '../src/index.js'
import { eventually } from './support.js'

export const run = promisify(execFile)
export const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

export async function npm(cwd: string, args: string[]) {
  return run(NPM, args, { cwd, timeout: 120_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } })
}

export interface Packed {
  tarball: string
  /** The paths inside the tarball. */
  files: string[]
}

/** `npm pack` of the package (its prepack builds dist/) into `work`. */
export async function pack(work: string): Promise<Packed> {
  const { stdout } = await npm(PACKAGE, ['pack', '--json', '--pack-destination', work])
  const packed = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  return { tarball: path.join(work, packed[0].filename), files: packed[0].files.map((file) => file.path).sort() }
}

/**
 * A project in `work/name` with the tarball and `dependencies` installed (the npm registry only
 * for those, from npm's cache when it has them).
 */
export async function project(work: string, name: string, dependencies: string[], tarball: string): Promise<string> {
  const dir = path.join(work, name)
  mkdirSync(dir, { recursive: true })
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }))
  await npm(dir, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, ...dependencies])
  return dir
}

/** The downstream server: what the package's README shows, plus a status route for the tests. */
const SERVER = `
import Fastify from 'fastify'
import authVerifier from '@auth-service/verifier'

const app = Fastify()
await app.register(authVerifier, {
  issuer: process.env.ISSUER, audience: 'api',
  clientId: process.env.CLIENT_ID, clientSecret: process.env.CLIENT_SECRET,
  ...(process.env.STALE_AFTER_MS ? { staleAfterMs: Number(process.env.STALE_AFTER_MS) } : {})
})
app.get('/orders', { onRequest: app.requireAuth }, async (request) => ({ sub: request.auth.sub }))
app.get('/verifier-status', async () => app.authVerifier.status)
await app.listen({ host: '127.0.0.1', port: 0 })
console.log(JSON.stringify({ port: app.server.address().port }))
process.once('SIGTERM', () => app.close().then(() => process.exit(0)))
`

export interface DownstreamOptions {
  issuer: string
  clientId: string
  clientSecret: string
  staleAfterMs?: number
}

export interface Downstream {
  readonly url: string
  /** GET /orders with the token: the status, and the answer's www-authenticate and retry-after. */
  orders(token: string): Promise<{ status: number, challenge: string | null, retryAfter: string | null, body: unknown }>
  status(): Promise<VerifierStatus>
  output(): string
  /** SIGTERM (SIGKILL after 10 s); resolves to the exit code. */
  stop(): Promise<number | null>
}

/** Runs the downstream server of the project in `dir` (stopped at the end of `t`, by its pid). */
export async function startDownstream(t: Test, dir: string, options: DownstreamOptions): Promise<Downstream> {
  writeFileSync(path.join(dir, 'server.js'), SERVER)
  const child = spawn(process.execPath, ['server.js'], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      ISSUER: options.issuer,
      CLIENT_ID: options.clientId,
      CLIENT_SECRET: options.clientSecret,
      ...(options.staleAfterMs ? { STALE_AFTER_MS: String(options.staleAfterMs) } : {})
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    const code = await exited
    clearTimeout(timer)
    return code
  }
  t.teardown(stop)
  await eventually(() => output.includes('"port"') || child.exitCode !== null, 20_000, `the downstream service listening: ${output}`)
  if (child.exitCode !== null) throw new Error(`the downstream service exited with ${child.exitCode}: ${output}`)
  const port = JSON.parse(output.slice(output.indexOf('{'), output.indexOf('}') + 1)).port
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    async orders(token) {
      const response = await fetch(`${url}/orders`, { headers: { authorization: `Bearer ${token}` } })
      const text = await response.text()
      return {
        status: response.status,
        challenge: response.headers.get('www-authenticate'),
        retryAfter: response.headers.get('retry-after'),
        body: text ? JSON.parse(text) : undefined
      }
    },
    async status() {
      return (await fetch(`${url}/verifier-status`)).json() as Promise<VerifierStatus>
    },
    output: () => output,
    stop
  }
}
