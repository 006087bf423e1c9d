// docs/nginx.conf.example, run for real: nginx (auth_request) in front of the auth server and a
// stand-in application. The config under test is the documented file itself, with only the
// upstream addresses, the listen address, the log and temp paths swapped for this test's own.
// Skipped when nginx is not installed (.ci/run installs it).
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { findNginx, replaceOnce, skipReason, startNginx, withTempPaths } from '../support/nginx.js'
import { sendRequest, type Reply } from '../support/http.js'
import { freePort, startServer, type ServerProcess } from '../support/server-process.js'
import { PASSWORD, decodeJwt, uniqueEmail, type TokenPairBody } from '../helper.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const EXAMPLE = path.join(ROOT, 'docs/nginx.conf.example')
const API = '/api/v1/auth'
const REQUEST_TIMEOUT_MS = 10_000

/** The documented config with this test's addresses and paths. */
function renderConfig(dir: string, ports: { nginx: number, auth: number, app: number }): string {
  const file = 'docs/nginx.conf.example'
  let conf = readFileSync(EXAMPLE, 'utf8')
  conf = replaceOnce(conf, 'server auth:3000;', `server 127.0.0.1:${ports.auth};`, file)
  conf = replaceOnce(conf, 'server app:8080;', `server 127.0.0.1:${ports.app};`, file)
  conf = replaceOnce(conf, 'listen 80;', `listen 127.0.0.1:${ports.nginx};`, file)
  conf = replaceOnce(conf, 'access_log /var/log/nginx/access.log gateway;', `access_log ${dir}/access.log gateway;`, file)
  conf = replaceOnce(conf, 'worker_processes auto;', 'worker_processes 1;', file)
  return withTempPaths(conf, dir, file)
}

interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
}

/** The stand-in application: answers 200 with what it received, and remembers every request. */
async function startApp(): Promise<{ server: Server, port: number, seen: Seen[] }> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({
        method: req.method,
        url: req.url,
        x_user_id: req.headers['x-user-id'] ?? null,
        x_session_id: req.headers['x-session-id'] ?? null,
        x_request_id: req.headers['x-request-id'] ?? null,
        body
      }))
    })
  })
  server.keepAliveTimeout = 1_000
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
  })
  return { server, port, seen }
}

const nginx = findNginx()
const reason = skipReason(nginx)

if (reason) {
  t.plan(0, reason)
} else {
  const dir = mkdtempSync(path.join(tmpdir(), 'auth-nginx-'))
  // nginx started as root runs its workers as nobody: they must be able to reach the temp paths.
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  const databaseUrl = process.env.TEST_DATABASE_URL
  const auth: ServerProcess = await startServer({
    JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA'),
    // As docs/gateway.md says: the gateway's address, so request.ip is the client's.
    TRUST_PROXY: '127.0.0.1',
    // Request logs, to see which request id and client address the auth service was given.
    LOG_LEVEL: 'info',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {})
  })
  t.teardown(() => auth.stop())

  const app = await startApp()
  t.teardown(() => new Promise<void>((resolve) => {
    app.server.closeAllConnections()
    app.server.close(() => resolve())
  }))

  const nginxPort = await freePort()
  const gateway = `http://127.0.0.1:${nginxPort}`
  const confPath = path.join(dir, 'nginx.conf')
  writeFileSync(confPath, renderConfig(dir, {
    nginx: nginxPort,
    auth: Number(new URL(auth.url).port),
    app: app.port
  }))
  const proxy = await startNginx(nginx!, dir, confPath, gateway)
  t.teardown(() => proxy.stop())

  // On a failure, what nginx and the auth server said is the first thing one needs.
  t.teardown(() => {
    if (!t.passing()) {
      t.comment(`nginx output:\n${proxy.output()}`)
      t.comment(`auth server output:\n${auth.output()}`)
      try {
        t.comment(`access log:\n${readFileSync(path.join(dir, 'access.log'), 'utf8')}`)
      } catch {
        // no log
      }
    }
  })

  interface CallOptions {
    method?: string
    token?: string
    body?: unknown
    headers?: Record<string, string>
  }

  async function call(pathname: string, options: CallOptions = {}) {
    const res = await fetch(`${gateway}${pathname}`, {
      method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS)
    })
    const text = await res.text()
    let json: any
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {
      json = undefined
    }
    return { status: res.status, headers: res.headers, text, json }
  }

  async function register(): Promise<TokenPairBody> {
    const res = await call(`${API}/register`, { body: { email: uniqueEmail('nginx'), password: PASSWORD } })
    if (res.status !== 201) throw new Error(`register through nginx: ${res.status} ${res.text}`)
    return res.json
  }

  /** A POST from a chosen local address (the 127.0.0.0/8 loopback net on Linux), bounded. */
  function postFrom(localAddress: string, pathname: string, body: unknown): Promise<Reply> {
    return sendRequest(`${gateway}${pathname}`, { method: 'POST', localAddress, body, timeoutMs: REQUEST_TIMEOUT_MS })
  }

  async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (check()) return true
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return check()
  }

  /** An assertion message that carries the body only when the status is wrong (bodies hold tokens). */
  function explain(status: number, want: number, body: string): string {
    return status === want ? `status ${want}` : `status ${status}, want ${want}: ${body}`
  }

  const REQUEST_ID = /^[0-9a-f]{32}$/

  t.test('public endpoints are proxied straight through', async (t) => {
    const before = app.seen.length
    const res = await call(`${API}/register`, { body: { email: uniqueEmail('nginx'), password: PASSWORD } })
    t.equal(res.status, 201, explain(res.status, 201, res.text))
    t.type(res.json?.access_token, 'string')
    t.match(res.headers.get('x-request-id'), REQUEST_ID, "the auth service used nginx's $request_id")

    const login = await call(`${API}/login`, { body: { email: res.json.user.email, password: PASSWORD } })
    t.equal(login.status, 200, explain(login.status, 200, login.text))
    const jwks = await call('/.well-known/jwks.json')
    t.equal(jwks.status, 200)
    t.ok(Array.isArray(jwks.json?.keys) && jwks.json.keys.length > 0, 'the JWKS')
    const refresh = await call(`${API}/refresh`, { body: { refresh_token: 'not-a-token' } })
    t.equal(refresh.status, 401, 'refresh answers for itself: no auth_request in front of it')
    t.equal(app.seen.length, before, 'none of it reached the application')
  })

  t.test('a valid token reaches the application with the caller in X-User-Id and X-Session-Id', async (t) => {
    const pair = await register()
    const sid = decodeJwt(pair.access_token).payload.sid
    const res = await call('/api/orders?page=2', { token: pair.access_token })
    t.equal(res.status, 200, explain(res.status, 200, res.text))
    t.equal(res.json.url, '/api/orders?page=2')
    t.equal(res.json.x_user_id, pair.user.id)
    t.equal(res.json.x_session_id, sid)
    t.match(res.json.x_request_id, REQUEST_ID, 'the application got the request id')

    // The check itself is always a GET (proxy_method GET); the client's method and body go on.
    const post = await call('/api/orders', { token: pair.access_token, body: { item: 'book' } })
    t.equal(post.status, 200, explain(post.status, 200, post.text))
    t.equal(post.json.method, 'POST')
    t.same(JSON.parse(post.json.body), { item: 'book' }, 'the body reached the application')
    t.equal(post.json.x_user_id, pair.user.id)
    const del = await call('/api/orders/7', { method: 'DELETE', token: pair.access_token })
    t.equal(del.status, 200, explain(del.status, 200, del.text))
    t.equal(del.json.x_session_id, sid)

    const me = await call(`${API}/me`, { token: pair.access_token })
    t.equal(me.status, 200, `the auth service's own protected endpoints work behind the check (${explain(me.status, 200, me.text)})`)
    t.equal(me.json?.id ?? me.json?.user?.id, pair.user.id)
  })

  t.test('no token or a bad token: 401 with the WWW-Authenticate challenge, nothing forwarded', async (t) => {
    const before = app.seen.length
    const none = await call('/api/orders')
    t.equal(none.status, 401)
    t.equal(none.headers.get('www-authenticate'), 'Bearer')
    t.match(none.json, { statusCode: 401, error: 'Unauthorized', message: String })
    t.match(none.headers.get('x-request-id'), REQUEST_ID)

    const bad = await call('/api/orders', { token: 'not.a.jwt' })
    t.equal(bad.status, 401)
    t.equal(bad.headers.get('www-authenticate'), 'Bearer error="invalid_token"')

    const basic = await call('/api/orders', { headers: { authorization: 'Basic dXNlcjpwYXNz' } })
    t.equal(basic.status, 401)

    const post = await call('/api/orders', { body: { item: 'book' } })
    t.equal(post.status, 401, 'a POST without a token too')
    t.equal(app.seen.length, before, 'the application saw none of these')
  })

  t.test('a client-sent X-User-Id is never trusted', async (t) => {
    const victim = await register()
    const before = app.seen.length
    const spoofed = await call('/api/orders', {
      headers: { 'x-user-id': victim.user.id, 'x-session-id': decodeJwt(victim.access_token).payload.sid }
    })
    t.equal(spoofed.status, 401, 'without a token the identity headers get nobody in')
    t.equal(app.seen.length, before, 'and nothing reached the application')

    const attacker = await register()
    const mixed = await call('/api/orders', {
      token: attacker.access_token,
      headers: { 'x-user-id': victim.user.id, 'x-session-id': 'x' }
    })
    t.equal(mixed.status, 200, explain(mixed.status, 200, mixed.text))
    t.equal(mixed.json.x_user_id, attacker.user.id, "the token's user, not the header's")
    t.equal(mixed.json.x_session_id, decodeJwt(attacker.access_token).payload.sid)
    const last = app.seen.at(-1)!
    t.equal(last.headers['x-user-id'], attacker.user.id, 'exactly one X-User-Id, the real one')
  })

  // Another loopback address for the client (any 127.x.y.z on Linux; macOS has only 127.0.0.1).
  const aliasReason = await new Promise<string | false>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: nginxPort, localAddress: '127.0.0.2', timeout: 2_000 })
    socket.once('connect', () => socket.end(() => resolve(false)))
    socket.once('timeout', () => socket.destroy(new Error('timed out')))
    socket.once('error', (err) => resolve(`cannot connect from 127.0.0.2 here (${err.message})`))
  })

  t.test('with TRUST_PROXY the auth service records the client address, not nginx\'s', { skip: aliasReason }, async (t) => {
    // A client on 127.0.0.2: nginx puts it in X-Forwarded-For, and with TRUST_PROXY naming the
    // gateway the auth service takes it from there (the TCP peer it sees is nginx, 127.0.0.1).
    const registered = await postFrom('127.0.0.2', `${API}/register`, { email: uniqueEmail('nginx-ip'), password: PASSWORD })
    t.equal(registered.status, 201, explain(registered.status, 201, registered.body))
    const pair: TokenPairBody = JSON.parse(registered.body)
    const sessions = await call(`${API}/sessions`, { token: pair.access_token })
    t.equal(sessions.status, 200, explain(sessions.status, 200, sessions.text))
    const list: Array<{ id: string, ip: string | null }> = Array.isArray(sessions.json) ? sessions.json : sessions.json?.sessions
    t.equal(list?.find((s) => s.id === decodeJwt(pair.access_token).payload.sid)?.ip, '127.0.0.2', 'the session has the client address')
  })

  t.test('the check and the application get the same request id; the check is a GET', async (t) => {
    const pair = await register()
    const res = await call('/api/orders', { token: pair.access_token, body: { item: 'pen' } })
    t.equal(res.status, 200, explain(res.status, 200, res.text))
    t.equal(res.json.method, 'POST')
    const rid = res.json.x_request_id
    t.match(rid, REQUEST_ID, "nginx's $request_id")
    // The auth service's request log (LOG_LEVEL info): one JSON line per request, with reqId.
    const verifyLogged = await waitFor(() => auth.output().split('\n').some((line) => {
      try {
        const entry = JSON.parse(line)
        return entry.reqId === rid && entry.req?.url === `${API}/verify` && entry.req?.method === 'GET'
      } catch {
        return false
      }
    }), 5_000)
    t.ok(verifyLogged, `the auth service logged GET /verify under the request id ${rid}`)
  })

  t.test('logout through nginx ends access at once', async (t) => {
    const pair = await register()
    const other = await register()
    t.equal((await call('/api/orders', { token: pair.access_token })).status, 200)

    const logout = await call(`${API}/logout`, { method: 'POST', token: pair.access_token })
    t.equal(logout.status, 204, explain(logout.status, 204, logout.text))

    const before = app.seen.length
    const after = await call('/api/orders', { token: pair.access_token })
    t.equal(after.status, 401, 'the very next request is refused')
    t.equal(after.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
    t.equal((await call(`${API}/me`, { token: pair.access_token })).status, 401)
    t.equal(app.seen.length, before, 'nothing reached the application')

    const unaffected = await call('/api/orders', { token: other.access_token })
    t.equal(unaffected.status, 200, "another user's session is untouched")
  })

  t.test('auth service down: the gateway fails closed with 503', async (t) => {
    const pair = await register()
    t.equal((await call('/api/orders', { token: pair.access_token })).status, 200)
    await auth.stop()
    const before = app.seen.length
    const res = await call('/api/orders', { token: pair.access_token })
    t.equal(res.status, 503, explain(res.status, 503, res.text))
    t.match(res.json, { statusCode: 503, error: 'Service Unavailable' })
    t.ok(res.headers.get('retry-after'), 'Retry-After')
    t.equal(app.seen.length, before, 'nothing reached the application')
  })
}
