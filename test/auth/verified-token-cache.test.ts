// Issue 5: a token seen before skips its signature check (services/verified-token-cache.ts), but
// never outlives its `exp` and never outlives its session.
import t from 'tap'
import { API_PREFIX, bearer, buildTestApp, me, registerUser } from '../helper.js'

t.test('a cached token still dies at logout', async (t) => {
  const { app } = await buildTestApp(t, { env: { TOKEN_CACHE_SIZE: '100' } })
  const pair = await registerUser(app)
  for (let i = 0; i < 3; i++) t.equal((await me(app, pair.access_token)).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })).statusCode, 204)
  t.equal((await me(app, pair.access_token)).statusCode, 401)
})

t.test('a cached token still expires at exp', async (t) => {
  // Three seconds, not one: exp is in whole seconds, so a one-second token may expire within a
  // millisecond of being issued (iat 12.999 s -> 12, exp 13).
  const { app } = await buildTestApp(t, { env: { TOKEN_CACHE_SIZE: '100', ACCESS_TOKEN_TTL: '3', CLOCK_TOLERANCE: '0' } })
  const pair = await registerUser(app)
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'verified once, now cached')
  // Real time: the signature check reads the wall clock; the cache reads the service's clock,
  // which follows it.
  const exp = JSON.parse(Buffer.from(pair.access_token.split('.')[1], 'base64url').toString()).exp * 1000
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp - Date.now()) + 50))
  const res = await me(app, pair.access_token)
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
})

t.test('a tampered copy of a cached token is not a cache hit', async (t) => {
  const { app } = await buildTestApp(t, { env: { TOKEN_CACHE_SIZE: '100' } })
  const pair = await registerUser(app)
  t.equal((await me(app, pair.access_token)).statusCode, 200)
  const [header, payload, signature] = pair.access_token.split('.')
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
  const forged = [header, Buffer.from(JSON.stringify({ ...claims, sub: crypto.randomUUID() })).toString('base64url'), signature].join('.')
  t.equal((await me(app, forged)).statusCode, 401)
})
