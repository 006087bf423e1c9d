// On SIGTERM the server stops accepting, finishes every request it accepted, closes the
// database and the notification connection, and exits 0.
import { Agent, request as httpRequest } from 'node:http'
import t from 'tap'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { PASSWORD, uniqueEmail } from '../helper.js'
import { startServer } from '../support/server-process.js'

interface Outcome {
  status?: number
  body?: string
  error?: string
}

/** One request on its own connection; resolves once `onSent` has fired and the answer (or error) is in. */
function post(url: string, path: string, payload: unknown, onSent: () => void): Promise<Outcome> {
  return send(url, path, 'POST', JSON.stringify(payload), onSent)
}

function send(url: string, path: string, method: string, body: string | undefined, onSent: () => void): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = httpRequest(`${url}${path}`, {
      method,
      agent: false,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
        connection: 'close'
      }
    })
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode, body: text }))
      res.on('error', (err) => resolve({ status: res.statusCode, error: err.message }))
    })
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }))
    req.end(body, onSent)
  })
}

t.test('SIGTERM during a burst: every accepted request gets a full answer, then exit 0', async (t) => {
  const databaseUrl = process.env.TEST_DATABASE_URL
  const server = await startServer({
    JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA'),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {})
  })
  t.teardown(() => server.stop(2_000))

  const email = uniqueEmail('shutdown')
  const registered = await fetch(`${server.url}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD })
  })
  t.equal(registered.status, 201)

  // Logins are slow on purpose (argon2id): a burst of them is still in flight at SIGTERM.
  const BURST = 30
  let sent = 0
  let allSent: () => void
  const everySent = new Promise<void>((resolve) => (allSent = resolve))
  const burst = Array.from({ length: BURST }, () =>
    post(server.url, '/api/v1/auth/login', { email, password: PASSWORD }, () => {
      if (++sent === BURST) allSent()
    })
  )
  await everySent
  // The server accepts connections in order: once a later connection is answered, every request
  // of the burst has been accepted (on the embedded engine the event loop can be busy for a while).
  const probe = await send(server.url, '/health/live', 'GET', undefined, () => {})
  t.equal(probe.status, 200, 'the burst is accepted')
  const exited = server.stop(15_000)

  const outcomes = await Promise.all(burst)
  const answered = outcomes.filter((o) => o.status !== undefined)
  t.equal(answered.length, BURST, `all ${BURST} accepted requests were answered (${JSON.stringify(outcomes.filter((o) => o.error))})`)
  for (const outcome of answered) {
    t.equal(outcome.error, undefined, 'the response arrived whole')
    if (outcome.status === 200) {
      t.match(JSON.parse(outcome.body!), { access_token: String, refresh_token: String }, 'a complete token pair')
    } else {
      // Fastify answers 503 to a request that arrives while closing: still a full answer.
      t.equal(outcome.status, 503, `a complete answer: ${outcome.status} ${outcome.body}`)
    }
  }
  t.comment(`${answered.filter((o) => o.status === 200).length} logins finished during shutdown`)

  t.equal(await exited, 0, 'exit code 0')
  t.notMatch(server.output(), /"level":(50|60)/, 'no error was logged while shutting down')

  const after = await post(server.url, '/api/v1/auth/login', { email, password: PASSWORD }, () => {})
  t.equal(after.error, 'ECONNREFUSED', 'nothing is accepted after exit')
})

t.test('SIGTERM with keep-alive connections in use: their answers close them, and the process exits at once', async (t) => {
  const databaseUrl = process.env.TEST_DATABASE_URL
  const server = await startServer({
    JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA'),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {})
  })
  t.teardown(() => server.stop(2_000))
  const email = uniqueEmail('shutdown-keepalive')
  const registered = await fetch(`${server.url}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD })
  })
  t.equal(registered.status, 201)

  // As a balancer holds them: keep-alive connections that stay open after their answers. A
  // connection whose request was in flight at SIGTERM used to stay open after it, until
  // close-with-grace killed the process after 10 s with exit 1.
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => agent.destroy())
  const login = () => new Promise<{ status?: number, connection?: string, error?: string }>((resolve) => {
    const body = JSON.stringify({ email, password: PASSWORD })
    const req = httpRequest(`${server.url}/api/v1/auth/login`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection }))
    })
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }))
    req.end(body)
  })
  // The connections are open and idle-able first, then a burst is in flight on them at SIGTERM.
  await Promise.all(Array.from({ length: 8 }, login))
  // One login per connection (argon2id, four at a time): some are still in progress when closing begins.
  const burst = Array.from({ length: 8 }, login)
  await new Promise((resolve) => setTimeout(resolve, 10))
  const signalled = performance.now()
  const exited = server.stop(15_000)
  const outcomes = await Promise.all(burst)
  const code = await exited
  const seconds = (performance.now() - signalled) / 1000
  t.comment(`exited ${seconds.toFixed(1)} s after SIGTERM; answers: ${outcomes.map((o) => o.status ?? o.error).join(', ')}`)
  // Answers sent before the signal was handled keep their connection; it is idle then, and closed.
  const closing = outcomes.filter((o) => o.connection === 'close').length
  t.ok(closing > 0, `answers sent while closing close their connection (${closing} of ${outcomes.length})`)
  t.equal(outcomes.filter((o) => o.status === undefined).length, 0, 'every request of the burst was answered')
  t.equal(code, 0, 'exit code 0')
  t.ok(seconds < 8, `exited before close-with-grace's 10 s (${seconds.toFixed(1)} s)`)
})
