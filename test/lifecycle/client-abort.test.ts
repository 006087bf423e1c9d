// A client that sends part of its request body and drops the connection (Node raises ECONNRESET
// "aborted" on the request) did nothing to the database: no error-level line, no "database
// unavailable" and no 503 for it, at most one info line, and no outage in the metrics
// (docs/operations.md, "Database outages"). Otherwise anyone could fill the log with stack traces
// and trip outage alarms.
import net from 'node:net'
import t from 'tap'
import { API_PREFIX, buildTestApp, captureLog } from '../helper.js'

interface LogLine {
  level: number
  msg: string
  reqId?: string
  statusCode?: number
  res?: { statusCode?: number }
}

/** Headers announcing a body of 200 bytes, 20 of them, then the socket is destroyed. */
function abortMidBody(port: number, url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        `POST ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n` +
          '{"email":"someone@ex'
      )
      // Let the server start reading the body before the connection goes.
      setTimeout(() => socket.destroy(), 50)
    })
    socket.on('error', reject)
    socket.on('close', () => resolve())
  })
}

t.test('a client aborting its request body is the client\'s, not an outage', async (t) => {
  const log = captureLog<LogLine>()
  const { app } = await buildTestApp(t, { env: { LOG_LEVEL: 'info' }, logStream: log.stream })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as net.AddressInfo

  const urls = [`${API_PREFIX}/login`, `${API_PREFIX}/register`, `${API_PREFIX}/refresh`]
  for (const url of urls) await abortMidBody(port, url)
  // The server notices the closed socket on its next turn of the event loop.
  for (let i = 0; i < 50 && log.lines.filter((line) => line.reqId && line.msg !== 'incoming request').length < urls.length; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }

  const requestLines = log.lines.filter((line) => line.reqId)
  t.equal(requestLines.filter((line) => line.msg === 'incoming request').length, urls.length, 'the requests arrived')
  t.same(requestLines.filter((line) => line.level > 30), [], 'no line above info')
  t.notOk(log.lines.some((line) => /database unavailable|request failed/i.test(line.msg) || line.statusCode === 503 || line.res?.statusCode === 503), 'never classified as an outage')
  const byRequest = new Map<string, number>()
  for (const line of requestLines) {
    if (line.msg !== 'incoming request') byRequest.set(line.reqId!, (byRequest.get(line.reqId!) ?? 0) + 1)
  }
  t.ok([...byRequest.values()].every((n) => n <= 1), 'at most one line per abort besides the incoming request')
  t.ok(requestLines.some((line) => line.msg === 'client aborted the request' && line.level === 30), 'told as a client abort, at info')

  const scrape = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(scrape.statusCode, 200, 'metrics scraped')
  const metrics = scrape.body
  t.notMatch(metrics, /^http_request_duration_seconds_count\{[^}]*status_code="5\d\d"[^}]*\} [1-9]/m, 'no 5xx in the request metrics')
  t.match(metrics, /^auth_database_unavailable_total 0$/m, 'the outage counter did not move')

  // And the app serves on as before.
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
})
