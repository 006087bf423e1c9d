// An instance that has served no request for MEMORY_RELEASE_IDLE gives its memory back once
// (src/idle-memory.ts): once per quiet spell, never while requests come, health probes and
// /metrics scrapes not counted as traffic. A real HTTP server on loopback, real time.
import { createServer, type Server } from 'node:http'
import { Writable } from 'node:stream'
import pino from 'pino'
import t, { type Test } from 'tap'
import { releaseMemoryWhenIdle } from '../../src/idle-memory.js'
import { setTimeout as sleep } from 'node:timers/promises'

interface Release { rssBefore: number, rssAfter: number, ms: number }

/** A debug-level logger whose "memory given back" lines are collected. */
function capturingLogger(): { log: pino.Logger, releases: Release[], warnings: string[] } {
  const releases: Release[] = []
  const warnings: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const line = JSON.parse(chunk.toString()) as Release & { msg: string, level: number }
      if (line.msg === 'idle: memory given back') releases.push(line)
      if (line.level === 40) warnings.push(line.msg)
      done()
    }
  })
  return { log: pino({ level: 'debug' }, stream), releases, warnings }
}

async function listening(t: Test): Promise<{ server: Server, get(path: string): Promise<number> }> {
  const server = createServer((_req, res) => res.end('ok'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as { port: number }
  return {
    server,
    async get(path) {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) })
      await response.text()
      return response.status
    }
  }
}

/** Requests to `path` every 200 ms for `ms`. */
async function trafficFor(get: (path: string) => Promise<number>, path: string, ms: number): Promise<void> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    await get(path)
    await sleep(200)
  }
}

t.test('one collection after a quiet second, none more while it stays quiet, one again after traffic', async (t) => {
  const { server, get } = await listening(t)
  const { log, releases } = capturingLogger()
  let before = 0
  const release = releaseMemoryWhenIdle({ servers: [server], idleSeconds: 1, log, beforeCollect: async () => { before++ } })
  t.teardown(() => release.stop())

  await sleep(1_700)
  t.equal(releases.length, 1, 'released once, counted from the start')
  t.equal(before, 1, 'beforeCollect ran first (the password-hashing threads end there)')
  const [first] = releases
  t.ok(first!.rssBefore > 0 && first!.rssAfter > 0 && first!.ms >= 0, 'the log says the RSS before and after and the pause')
  await sleep(1_500)
  t.equal(releases.length, 1, 'still quiet: not again')

  await get('/api/v1/auth/verify')
  await sleep(1_700)
  t.equal(releases.length, 2, 'a request, then a quiet second: once more')
  t.equal(before, 2)
})

t.test('a failing beforeCollect is logged, and the collection runs all the same', async (t) => {
  const { server } = await listening(t)
  const { log, releases, warnings } = capturingLogger()
  const release = releaseMemoryWhenIdle({ servers: [server], idleSeconds: 1, log, beforeCollect: () => Promise.reject(new Error('thread stuck')) })
  t.teardown(() => release.stop())
  await sleep(1_700)
  t.same(warnings, ['idle: giving memory back failed'], 'one warning')
  t.equal(releases.length, 1, 'collected')
})

t.test('requests keep it from collecting; health probes and /metrics scrapes do not', async (t) => {
  const { server, get } = await listening(t)
  const { log, releases } = capturingLogger()
  const release = releaseMemoryWhenIdle({ servers: [server], idleSeconds: 1, log })
  t.teardown(() => release.stop())

  await trafficFor(get, '/api/v1/auth/verify', 2_500)
  t.equal(releases.length, 0, 'a request every 200 ms for 2.5 s: no pause among them')

  await sleep(1_700)
  const afterTraffic = releases.length
  t.equal(afterTraffic, 1, 'the quiet second after: released')
  await get('/api/v1/auth/login')
  await Promise.all([trafficFor(get, '/health/ready', 2_000), trafficFor(get, '/metrics', 2_000)])
  t.equal(releases.length, 2, 'probes and scrapes every 200 ms: still counted as quiet, released')
})

t.test('the collection gives back what garbage held', async (t) => {
  const { server } = await listening(t)
  const { log, releases } = capturingLogger()
  // About 60 MB of old-generation objects, then dropped: the heap keeps its pages until a collection.
  let garbage: Array<{ n: number, s: string }> | undefined = Array.from({ length: 600_000 }, (_, n) => ({ n, s: `garbage-${n}`.repeat(4) }))
  t.ok(garbage.length > 0)
  const grown = process.memoryUsage().heapTotal
  garbage = undefined

  const release = releaseMemoryWhenIdle({ servers: [server], idleSeconds: 1, log })
  t.teardown(() => release.stop())
  await sleep(1_700)
  t.equal(releases.length, 1, 'released')
  const after = process.memoryUsage().heapTotal
  t.ok(after < grown - 20 * 1024 * 1024, `heap total ${(grown / 2 ** 20).toFixed(0)} MB before, ${(after / 2 ** 20).toFixed(0)} MB after`)
})

t.test('0 turns it off; stop() takes its listener off the server', async (t) => {
  const { server } = await listening(t)
  const { log, releases } = capturingLogger()
  const listeners = server.listenerCount('request')

  const off = releaseMemoryWhenIdle({ servers: [server], idleSeconds: 0, log })
  t.equal(server.listenerCount('request'), listeners, 'off: no listener added')
  await sleep(1_300)
  t.equal(releases.length, 0, 'off: nothing collected')
  off.stop()

  const on = releaseMemoryWhenIdle({ servers: [server], idleSeconds: 1, log })
  t.equal(server.listenerCount('request'), listeners + 1, 'on: one listener counting requests')
  on.stop()
  t.equal(server.listenerCount('request'), listeners, 'stopped: gone')
  await sleep(1_300)
  t.equal(releases.length, 0, 'stopped before its quiet second: nothing collected')
})
