import t from 'tap'
import { VerifiedTokenCache } from '../../src/auth/verified-token-cache.js'

t.test('a token is remembered until the moment given, not a millisecond longer', async (t) => {
  const cache = new VerifiedTokenCache<string>(10)
  cache.remember('token-a', 'access', 'claims', 1_000_000)
  t.equal(cache.lookup('token-a', 'access', 1_000_000), 'claims')
  t.equal(cache.lookup('token-a', 'access', 1_000_001), undefined, 'past it, a miss')
  t.equal(cache.size, 0, 'and the stale entry is gone')
})

t.test('a hit needs the very same token string and the same kind', async (t) => {
  const cache = new VerifiedTokenCache<string>(10)
  cache.remember('aaa.bbb.ccc', 'access', 'claims', Number.MAX_SAFE_INTEGER)
  t.equal(cache.lookup('aaa.bbb.ccd', 'access', 0), undefined)
  t.equal(cache.lookup('aaa.bbb.cc', 'access', 0), undefined)
  t.equal(cache.lookup('aaa.bbb.ccc', 'refresh', 0), undefined, 'another kind is a miss')
  t.equal(cache.lookup('aaa.bbb.ccc', 'access', 0), 'claims')
})

t.test('a token without a usable expiry is not remembered', async (t) => {
  const cache = new VerifiedTokenCache<string>(10)
  cache.remember('token', 'access', 'claims', Number.NaN)
  t.equal(cache.size, 0)
})

t.test('size 0 remembers nothing', async (t) => {
  const cache = new VerifiedTokenCache<string>(0)
  cache.remember('token', 'access', 'claims', Number.MAX_SAFE_INTEGER)
  t.equal(cache.lookup('token', 'access', 0), undefined)
  t.equal(cache.size, 0)
})

t.test('a hundred thousand distinct tokens never grow the cache past its size', async (t) => {
  const cache = new VerifiedTokenCache<string>(1_000)
  for (let i = 0; i < 100_000; i++) cache.remember(`token-${i}`, 'access', 'claims', Number.MAX_SAFE_INTEGER)
  t.equal(cache.size, 1_000)
  t.ok(cache.lookup('token-99999', 'access', 0), 'the most recent are kept')
  t.equal(cache.lookup('token-0', 'access', 0), undefined, 'the least recently used were dropped')
})
