// The per-request logger (src/logging.ts): made only when a request writes a line its level
// lets through, and then the same pino child as before, with the request id and redaction.
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import pino from 'pino'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { loggerOptions, requestIdOf, requestLogger } from '../../src/logging.js'

function capture() {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    }
  })
  return { stream, lines }
}

t.test('no pino child until a line gets through the level; then exactly one', async (t) => {
  const out = capture()
  const parent = pino({ level: 'warn' }, out.stream)
  let children = 0
  const makeChild = parent.child.bind(parent)
  parent.child = ((...args: Parameters<typeof parent.child>) => {
    children += 1
    return makeChild(...args)
  }) as typeof parent.child

  const log = requestLogger(parent, { reqId: 'r-1' }, {})
  log.info('not at warn')
  log.debug({ detail: 1 }, 'nor this')
  t.equal(children, 0, 'lines below the level make no child')
  t.equal(log.level, 'warn', 'the level is the parent’s')

  log.warn({ code: 'X' }, 'first')
  log.error('second')
  t.equal(children, 1, 'one child, made on the first line written')
  t.match(out.lines, [
    { level: 40, reqId: 'r-1', code: 'X', msg: 'first' },
    { level: 50, reqId: 'r-1', msg: 'second' }
  ])

  parent.level = 'info'
  const later = requestLogger(parent, { reqId: 'r-2' }, {})
  later.info('now at info')
  t.match(out.lines.at(-1), { level: 30, reqId: 'r-2', msg: 'now at info' }, 'follows a level change of the parent')
})

t.test('a route with its own log level gets its child at once', async (t) => {
  const parent = pino({ level: 'warn' }, capture().stream)
  const log = requestLogger(parent, { reqId: 'r-3' }, { level: 'debug' })
  t.equal(log.level, 'debug')
})

t.test('inside Fastify: lines of a request carry its id and stay redacted', async (t) => {
  const out = capture()
  const config = loadConfig({ LOG_LEVEL: 'warn', NODE_ENV: 'test' })
  const app = Fastify({ logger: loggerOptions(config, out.stream), genReqId: requestIdOf, childLoggerFactory: requestLogger })
  t.teardown(() => app.close())
  app.post('/quiet', async (request) => {
    request.log.info({ body: request.body }, 'below the level')
    return { ok: true }
  })
  app.post('/loud', async (request) => {
    request.log.warn({ body: request.body }, 'something to see')
    return { ok: true }
  })

  const quiet = await app.inject({ method: 'POST', url: '/quiet', payload: { password: 'hunter2-secret' } })
  t.equal(quiet.statusCode, 200)
  t.same(out.lines, [], 'nothing below warn')

  const loud = await app.inject({
    method: 'POST',
    url: '/loud',
    headers: { 'x-request-id': 'gw-7' },
    payload: { password: 'hunter2-secret', refresh_token: 'eyJ.secret.token' }
  })
  t.equal(loud.statusCode, 200)
  t.match(out.lines, [{ level: 40, reqId: 'gw-7', msg: 'something to see', body: { password: '[redacted]', refresh_token: '[redacted]' } }])
  t.notMatch(JSON.stringify(out.lines), /hunter2|eyJ/, 'no secret in the log')
})
