import { randomUUID } from 'node:crypto'
import t from 'tap'
import { LivenessCache } from '../../src/services/liveness-cache.js'

t.test('a million distinct sessions never grow the cache past its size', async (t) => {
  const cache = new LivenessCache({ max: 1_000, aliveTtlMs: 30_000 })
  const user = randomUUID()
  const heapBefore = process.memoryUsage().heapUsed
  for (let i = 0; i < 1_000_000; i++) {
    const id = `session-${i}`
    if (i % 10 === 0) cache.rememberDead(id)
    else cache.rememberAlive(id, user, cache.epoch)
  }
  t.equal(cache.size, 1_000)
  t.equal(cache.max, 1_000)
  const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024
  t.comment(`heap grew by ${grownMb.toFixed(1)} MiB for 1,000,000 sessions seen`)
  t.equal(cache.lookup('session-999999', user), true, 'the most recent are kept')
  t.equal(cache.lookup('session-0', user), undefined, 'the oldest were dropped')
})

t.test('answers: live for its own user only, dead wins, unknown is undefined', async (t) => {
  const cache = new LivenessCache({ max: 10, aliveTtlMs: 30_000 })
  cache.rememberAlive('s1', 'u1', cache.epoch)
  t.equal(cache.lookup('s1', 'u1'), true)
  t.equal(cache.lookup('s1', 'u2'), false, 'a session never belongs to another user')
  t.equal(cache.lookup('s2', 'u1'), undefined)

  cache.rememberDead('s1')
  cache.rememberAlive('s1', 'u1', cache.epoch)
  t.equal(cache.lookup('s1', 'u1'), false, 'a late "live" answer cannot resurrect a revoked session')
})

t.test('an answer read before a clear is not cached after it', async (t) => {
  const cache = new LivenessCache({ max: 10, aliveTtlMs: 30_000 })
  const epoch = cache.epoch
  cache.clear() // the feed reconnected while the database was being asked
  cache.rememberAlive('s1', 'u1', epoch)
  t.equal(cache.lookup('s1', 'u1'), undefined)
  cache.rememberAlive('s1', 'u1', cache.epoch)
  t.equal(cache.lookup('s1', 'u1'), true)
})

t.test('live answers expire after aliveTtlMs; size 0 or ttl 0 caches nothing live', async (t) => {
  const cache = new LivenessCache({ max: 10, aliveTtlMs: 20 })
  cache.rememberAlive('s1', 'u1', cache.epoch)
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.equal(cache.lookup('s1', 'u1'), undefined)

  const off = new LivenessCache({ max: 0, aliveTtlMs: 30_000 })
  off.rememberAlive('s1', 'u1', off.epoch)
  off.rememberDead('s2')
  t.equal(off.size, 0)
  t.equal(off.lookup('s2', 'u1'), undefined)

  const noTtl = new LivenessCache({ max: 10, aliveTtlMs: 0 })
  noTtl.rememberAlive('s1', 'u1', noTtl.epoch)
  t.equal(noTtl.lookup('s1', 'u1'), undefined)
})
