import { randomUUID } from 'node:crypto'
import t from 'tap'
import { VerifiedTokenCache } from '../../src/services/verified-token-cache.js'

const caller = (tokenExp = 2_000_000_000) => ({ userId: randomUUID(), sessionId: randomUUID(), tokenExp })

t.test('a token is remembered until its exp, not a millisecond longer', async (t) => {
  const cache = new VerifiedTokenCache(10)
  const who = caller(1_000)
  cache.remember('token-a', who)
  t.same(cache.lookup('token-a', 999_999), who)
  t.equal(cache.lookup('token-a', 1_000_000), undefined, 'at exp it is a miss')
  t.equal(cache.size, 0, 'and the expired entry is gone')
})

t.test('only the very same token string is a hit', async (t) => {
  const cache = new VerifiedTokenCache(10)
  cache.remember('aaa.bbb.ccc', caller())
  t.equal(cache.lookup('aaa.bbb.ccd', 0), undefined)
  t.equal(cache.lookup('aaa.bbb.cc', 0), undefined)
})

t.test('a token without a usable exp is not remembered', async (t) => {
  const cache = new VerifiedTokenCache(10)
  cache.remember('token', caller(Number.NaN))
  t.equal(cache.size, 0)
})

t.test('size 0 remembers nothing', async (t) => {
  const cache = new VerifiedTokenCache(0)
  cache.remember('token', caller())
  t.equal(cache.lookup('token', 0), undefined)
  t.equal(cache.size, 0)
})

t.test('a hundred thousand distinct tokens never grow the cache past its size', async (t) => {
  const cache = new VerifiedTokenCache(1_000)
  const who = caller()
  for (let i = 0; i < 100_000; i++) cache.remember(`token-${i}`, who)
  t.equal(cache.size, 1_000)
  t.ok(cache.lookup('token-99999', 0), 'the most recent are kept')
  t.equal(cache.lookup('token-0', 0), undefined, 'the least recently used were dropped')
})
