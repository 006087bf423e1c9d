// nginx for the tests and the bench that run the documented configurations for real
// (test/gateway/nginx.test.ts: docs/nginx.conf.example; test/gateway/balancer.test.ts and the
// bench's balancer scenario: docs/nginx-balancer.conf.example). Finds the binary, says why it
// cannot run, renders a documented file with only addresses and paths swapped, and runs nginx in
// the foreground in a process group of its own. Every wait is bounded.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The nginx binary: on PATH, or where distributions put it (/usr/sbin is not on every PATH). */
export function findNginx(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']
  for (const dir of dirs) {
    const candidate = path.join(dir, 'nginx')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** Why nginx cannot run the configuration here, or undefined when it can. */
export function skipReason(nginx: string | undefined, { authRequest = true }: { authRequest?: boolean } = {}): string | undefined {
  if (!nginx) return 'nginx is not installed (not on PATH, not in /usr/sbin); .ci/run installs it with apt-get'
  const info = spawnSync(nginx, ['-V'], { encoding: 'utf8', timeout: 10_000 })
  const text = `${info.stdout ?? ''}${info.stderr ?? ''}`
  if (info.status !== 0) return `${nginx} -V failed: ${text.trim() || info.error?.message}`
  if (authRequest && !text.includes('http_auth_request_module')) return `${nginx} is built without ngx_http_auth_request_module`
  return undefined
}

/** nginx -e (the startup error log) exists since 1.19.5; before it, -g error_log has to do. */
export function supportsErrorLogFlag(nginx: string): boolean {
  const info = spawnSync(nginx, ['-v'], { encoding: 'utf8', timeout: 10_000 })
  const match = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(`${info.stdout ?? ''}${info.stderr ?? ''}`)
  if (!match) return false
  const [major, minor, patch] = match.slice(1).map(Number)
  return major > 1 || (major === 1 && (minor > 19 || (minor === 19 && patch >= 5)))
}

/**
 * Replaces `from`, which must occur exactly once in `text` (the documented file `file`), so the
 * doc and the code that runs it cannot drift apart: a changed directive fails loudly.
 */
export function replaceOnce(text: string, from: string, to: string, file: string): string {
  return replaceExactly(text, from, to, 1, file)
}

/** Replaces every `from`, which must occur exactly `times` times in `text` (the documented file `file`). */
export function replaceExactly(text: string, from: string, to: string, times: number, file: string): string {
  const count = text.split(from).length - 1
  if (count !== times) throw new Error(`${file}: expected "${from}" ${times === 1 ? 'once' : `${times} times`}, found it ${count} times`)
  return text.split(from).join(to)
}

/**
 * Temp paths under `dir`, at the top of the http block: they default to the compiled-in
 * /var/lib/nginx, which a non-root user cannot write.
 */
export function withTempPaths(conf: string, dir: string, file: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((name) => `    ${name}_temp_path ${dir}/${name}_temp;`)
    .join('\n')
  return replaceOnce(conf, '\nhttp {\n', `\nhttp {\n${temp}\n`, file)
}

export interface Nginx {
  readonly child: ChildProcess
  readonly pid: number
  output(): string
  stop(): Promise<void>
}

/**
 * Runs `nginx -c confPath` in the foreground (prefix `dir`, pid file and error log there) and
 * waits until `url` + `readyPath` answers 2xx (15 s at most).
 */
export async function startNginx(nginx: string, dir: string, confPath: string, url: string, readyPath = '/.well-known/jwks.json'): Promise<Nginx> {
  const args = ['-p', `${dir}/`, '-c', confPath]
  if (supportsErrorLogFlag(nginx)) args.push('-e', 'stderr')
  args.push('-g', `daemon off; pid ${dir}/nginx.pid; error_log stderr warn;`)
  // Its own process group, so a stuck master and its workers can be killed together.
  const child = spawn(nginx, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const running = () => child.exitCode === null && child.signalCode === null

  const handle: Nginx = {
    child,
    pid: child.pid!,
    output: () => output,
    async stop() {
      if (!running()) return
      child.kill('SIGTERM') // nginx: fast shutdown
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL')
        } catch {
          // already gone
        }
      }, 5_000)
      await exited
      clearTimeout(timer)
    }
  }

  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (!running()) throw new Error(`nginx exited with ${child.exitCode ?? child.signalCode}:\n${output}`)
    try {
      const res = await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(2_000) })
      await res.arrayBuffer()
      if (res.ok) return handle
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await handle.stop()
  throw new Error(`nginx did not answer within 15 s:\n${output}`)
}

export const BALANCER_EXAMPLE = 'docs/nginx-balancer.conf.example'
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/**
 * docs/nginx-balancer.conf.example with three instances' ports (each listed in both upstream
 * groups), nginx's own listen port, its access log in `dir` (`dir`/access.log) and temp paths
 * there; nothing else changed.
 */
export function renderBalancerConfig(dir: string, ports: { nginx: number, instances: readonly [number, number, number] }): string {
  const file = BALANCER_EXAMPLE
  let conf = readFileSync(path.join(ROOT, file), 'utf8')
  ports.instances.forEach((port, i) => {
    conf = replaceExactly(conf, `server auth${i + 1}:3000 `, `server 127.0.0.1:${port} `, 2, file)
  })
  conf = replaceOnce(conf, 'listen 80;', `listen 127.0.0.1:${ports.nginx};`, file)
  conf = replaceOnce(conf, 'access_log /var/log/nginx/access.log balancer;', `access_log ${dir}/access.log balancer;`, file)
  return withTempPaths(conf, dir, file)
}

/** One line of the balancer's access log (its log_format balancer). */
export interface BalancerLogEntry {
  readonly request: string
  readonly status: number
  /** Every instance the request was sent to, in order, and what each answered ("502" for a failed connection). */
  readonly attempts: ReadonlyArray<{ readonly addr: string, readonly status: string }>
}

/** Parses the lines of the balancer's access log; lines that are not in its format are skipped. */
export function parseBalancerLog(text: string): BalancerLogEntry[] {
  const entries: BalancerLogEntry[] = []
  for (const line of text.split('\n')) {
    const match = /^\S+ "([^"]*)" (\d{3}) rid=\S+ upstream=(.*) ustatus=(.*) rt=\S+$/.exec(line)
    if (!match) continue
    // Several upstream groups are separated by " : ", attempts within one by ", ".
    const addrs = match[3].split(/, | : /)
    const statuses = match[4].split(/, | : /)
    entries.push({
      request: match[1],
      status: Number(match[2]),
      attempts: addrs.map((addr, i) => ({ addr, status: statuses[i] ?? '-' }))
    })
  }
  return entries
}
