// The server process gives memory back when quiet (src/idle-memory.ts, wired in src/server.ts):
// after MEMORY_RELEASE_IDLE without a request it ends the idle password-hashing threads and runs
// one collection; the next login starts a thread again.
import { existsSync, readdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { API_PREFIX, PASSWORD, uniqueEmail } from '../helper.js'
import { startServer, type ServerProcess } from '../support/server-process.js'

const linux = existsSync('/proc/self/task')

async function post(server: ServerProcess, path: string, body: unknown): Promise<number> {
  const response = await fetch(`${server.url}${API_PREFIX}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000)
  })
  await response.text()
  return response.status
}

const releases = (server: ServerProcess) => server.output().split('\n').filter((line) => line.includes('idle: memory given back'))
const threads = (server: ServerProcess) => readdirSync(`/proc/${server.pid}/task`).length

/** Waits (bounded) until the server has logged `count` releases. */
async function releasedTimes(server: ServerProcess, count: number): Promise<number> {
  for (let i = 0; i < 60 && releases(server).length < count; i++) await sleep(100)
  return releases(server).length
}

t.test('quiet for MEMORY_RELEASE_IDLE: the hashing threads end and memory is collected, once per quiet spell', { skip: linux ? false : 'needs /proc (Linux)' }, async (t) => {
  const server = await startServer({ MEMORY_RELEASE_IDLE: '1', LOG_LEVEL: 'debug', PASSWORD_HASH_CONCURRENCY: '2' })
  t.teardown(() => server.stop())

  t.equal(await releasedTimes(server, 1), 1, 'released after the first quiet second')
  const atRest = threads(server)

  const credentials = { email: uniqueEmail('idle'), password: PASSWORD }
  t.equal(await post(server, '/register', credentials), 201)
  t.equal(await post(server, '/login', credentials), 200)
  t.ok(threads(server) > atRest, `a login started a hashing thread (${atRest} threads before, ${threads(server)} after)`)

  t.equal(await releasedTimes(server, 2), 2, 'released again after the requests')
  t.equal(threads(server), atRest, 'the idle hashing thread is gone')
  const line = JSON.parse(releases(server)[1]!) as { rssBefore: number, rssAfter: number, ms: number }
  t.ok(line.rssBefore > 0 && line.rssAfter > 0 && line.ms >= 0, `logged: RSS ${(line.rssBefore / 2 ** 20).toFixed(0)} -> ${(line.rssAfter / 2 ** 20).toFixed(0)} MB in ${line.ms} ms`)

  t.equal(await post(server, '/login', credentials), 200, 'the next login works, on a new thread')
  await sleep(1_600)
  t.equal(await fetch(`${server.url}/health/ready`).then((r) => r.status), 200)
  t.equal(await releasedTimes(server, 3), 3, 'and the quiet after it releases once more')
  t.equal(await server.stop(), 0, 'exits 0')
})
