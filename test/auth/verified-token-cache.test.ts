// A token seen before skips its signature check (src/auth/verified-token-cache.ts), but never
// outlives its `exp` and never outlives its session.
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
  const { app, clock } = await buildTestApp(t, { env: { TOKEN_CACHE_SIZE: '100', ACCESS_TOKEN_TTL: '60', CLOCK_TOLERANCE: '0' } })
  const pair = await registerUser(app)
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'verified once, now cached')
  clock.advance(61)
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
