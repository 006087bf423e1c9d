// A PgBouncer of the test's own (Debian's `pgbouncer` package; .ci/run installs it) on a free
// loopback port, in transaction mode, in front of the PostgreSQL database a URL names. Started as
// a child process and stopped by its pid at the end of the test.
import { spawn } from 'node:child_process'
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { freePort } from './server-process.js'

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']

/** The pgbouncer binary, or undefined when it is not installed. */
export function pgbouncerBinary(): string | undefined {
  for (const candidate of CANDIDATES) {
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

export interface PgBouncer {
  /** The same database as the direct URL, through PgBouncer. */
  readonly url: string
  output(): string
}

export interface PgBouncerOptions {
  /** Server connections per database and user (default_pool_size). */
  poolSize?: number
}

export async function startPgBouncer(t: Test, directUrl: string, options: PgBouncerOptions = {}): Promise<PgBouncer> {
  const binary = pgbouncerBinary()
  if (!binary) throw new Error('pgbouncer is not installed')
  const direct = new URL(directUrl)
  const database = direct.pathname.slice(1) || 'postgres'
  const user = decodeURIComponent(direct.username) || 'postgres'
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'auth-pgbouncer-'))
  // As root it must drop to another user (-u), who then reads these files.
  chmodSync(dir, 0o755)
  const ini = path.join(dir, 'pgbouncer.ini')
  const users = path.join(dir, 'userlist.txt')
  writeFileSync(users, `"${user}" ""\n`, { mode: 0o644 })
  writeFileSync(ini, [
    '[databases]',
    `${database} = host=${direct.hostname} port=${direct.port || 5432} dbname=${database} user=${user}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${users}`,
    'pool_mode = transaction',
    `default_pool_size = ${options.poolSize ?? 5}`,
    'max_client_conn = 500',
    // node-postgres sends none of these, but a client may.
    'ignore_startup_parameters = extra_float_digits,options',
    ''
  ].join('\n'), { mode: 0o644 })

  const asRoot = process.getuid?.() === 0
  const child = spawn(binary, [...(asRoot ? ['-u', 'postgres'] : []), ini], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  })

  const deadline = Date.now() + 10_000
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}: ${output}`)
    if (Date.now() > deadline) throw new Error(`pgbouncer not listening after 10 s: ${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const url = new URL(directUrl)
  url.hostname = '127.0.0.1'
  url.port = String(port)
  return { url: url.toString(), output: () => output }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
