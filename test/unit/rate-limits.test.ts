// The pieces of src/plugins/rate-limits.ts that need no app: the slowdown schedule and its
// bound on requests held in memory, the in-memory store on an injected clock, address keys.
import t from 'tap'
import { Slowdown, addressKey, memoryStore, slowdownMs } from '../../src/plugins/rate-limits.js'

t.test('the slowdown: none below the ceiling, then 250 ms doubling, never past the cap', async (t) => {
  const schedule = [0, 1, 2, 3, 4, 5, 6, 7, 8, 1_000, 1e9].map((failures) => slowdownMs(failures, 3, 5_000))
  t.same(schedule, [0, 0, 0, 250, 500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000])
})

t.test('at most `capacity` requests are held at once; the next is refused without waiting', async (t) => {
  const releases: Array<() => void> = []
  const slowdown = new Slowdown(2, () => new Promise<void>((resolve) => releases.push(resolve)))
  const first = slowdown.hold(1_000)
  const second = slowdown.hold(1_000)
  t.equal(slowdown.size, 2)
  t.equal(await slowdown.hold(1_000), false, 'the third is refused at once')
  t.equal(await slowdown.hold(0), true, 'a request that need not wait is never refused')
  releases.forEach((release) => release())
  t.same(await Promise.all([first, second]), [true, true])
  t.equal(slowdown.size, 0)
  const third = slowdown.hold(1_000)
  t.equal(slowdown.size, 1, 'room again once they are released')
  releases[2]()
  t.equal(await third, true)
})

t.test('the memory store counts in windows of the injected clock, and read never counts', async (t) => {
  let nowMs = Date.parse('2026-12-01T12:00:00Z')
  const Store = memoryStore(() => new Date(nowMs), 10)
  const store = new Store({}).child({})
  const call = (method: 'incr' | 'read', key: string) =>
    new Promise<{ current: number, ttl: number }>((resolve, reject) =>
      store[method](key, (err, res) => (err ? reject(err) : resolve(res!)), 60_000, 10))
  t.same(await call('read', 'k'), { current: 0, ttl: 0 })
  t.same(await call('incr', 'k'), { current: 1, ttl: 60_000 })
  nowMs += 10_000
  t.same(await call('incr', 'k'), { current: 2, ttl: 50_000 })
  t.same(await call('read', 'k'), { current: 2, ttl: 50_000 })
  t.same(await call('read', 'k'), { current: 2, ttl: 50_000 }, 'read counts nothing')
  nowMs += 50_000
  t.same(await call('read', 'k'), { current: 0, ttl: 0 }, 'the window is over')
  t.same(await call('incr', 'k'), { current: 1, ttl: 60_000 })
})

t.test('address keys: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64', async (t) => {
  t.equal(addressKey('203.0.113.7'), '203.0.113.7')
  t.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7')
  t.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:DB8:1:2::ffff'), '2001:db8:1:2::/64', 'one /64, whatever the interface id')
  t.equal(addressKey('2001:0db8:0001:0002:aaaa::1'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(addressKey('::1'), '0:0:0:0::/64')
  t.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
  t.equal(addressKey(undefined), 'unknown')
})
