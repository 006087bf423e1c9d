// The revocation map on its own, on a clock the test moves.
import t from 'tap'
import { RevocationStore } from '../src/revocations.js'

function store(maxEntries = 100) {
  const clock = { now: 1_000_000 }
  const revocations = new RevocationStore({ retainMs: 60_000, maxEntries, now: () => clock.now })
  return { clock, revocations }
}

t.test('a session is revoked until its tokens must have expired, then forgotten', async (t) => {
  const { clock, revocations } = store()
  t.equal(revocations.revokeSession('s1', clock.now - 1_000), true)
  t.equal(revocations.check('s1', 'u1', clock.now - 5_000), 'revoked')
  t.equal(revocations.check('s2', 'u1', clock.now - 5_000), 'clear')
  clock.now += 58_999
  t.equal(revocations.check('s1', 'u1', clock.now - 5_000), 'revoked', 'still within the retention')
  clock.now += 1
  t.equal(revocations.check('s1', 'u1', clock.now - 5_000), 'clear', 'forgotten when the last token would have expired')
  t.equal(revocations.size, 0)
  t.equal(revocations.revokeSession('s3', clock.now - 60_000), false, 'an event already too old is not stored')
})

t.test('a redelivered or later event for the same session keeps the later end', async (t) => {
  const { clock, revocations } = store()
  revocations.revokeSession('s1', clock.now - 10_000)
  revocations.revokeSession('s1', clock.now)
  revocations.revokeSession('s1', clock.now - 20_000)
  clock.now += 55_000
  t.equal(revocations.check('s1', 'u', 0), 'revoked', 'remembered from the latest end')
  t.equal(revocations.size, 1)
})

t.test('a user-wide end covers tokens issued up to it', async (t) => {
  const { clock, revocations } = store()
  revocations.revokeUser('ABCDEF00-0000-4000-8000-000000000000', clock.now)
  t.equal(revocations.check('s', 'abcdef00-0000-4000-8000-000000000000', clock.now - 1), 'revoked', 'case-insensitive UUID')
  t.equal(revocations.check('s', 'abcdef00-0000-4000-8000-000000000000', clock.now + 1_000), 'clear', 'a later login')
})

t.test('prune() drops what has expired; the cap evicts the soonest-expiring and keeps a horizon', async (t) => {
  const { clock, revocations } = store(10)
  for (let i = 0; i < 10; i++) revocations.revokeSession(`s${i}`, clock.now - 30_000 + i * 1_000)
  t.equal(revocations.size, 10)
  t.equal(revocations.evicted, 0)
  revocations.revokeSession('s10', clock.now)
  t.ok(revocations.size <= 10, `within the cap: ${revocations.size}`)
  t.ok(revocations.evicted >= 1)
  t.equal(revocations.check('s0', 'u', clock.now - 40_000), 'unknown', 'an evicted session: cannot be told')
  t.equal(revocations.check('other', 'u', clock.now - 40_000), 'unknown', 'nor any token as old')
  t.equal(revocations.check('other', 'u', clock.now), 'clear', 'a token issued after every evicted end: clear')
  t.equal(revocations.check('s10', 'u', clock.now), 'revoked', 'the newest entry is kept')
  clock.now += 60_000
  t.equal(revocations.check('other', 'u', clock.now - 40_000), 'clear', 'the horizon lapses with the evicted entries')
  revocations.prune()
  t.equal(revocations.size, 0)
})
