// Revocation is by session id, compared in one canonical form everywhere (docs/api.md, "Tokens"):
// a variant of a revoked token whose sub or sid is written in upper case, even one signed with the
// service's own key, is just as dead, at once and not only after SESSION_CACHE_TTL.
import t from 'tap'
import { API_PREFIX, bearer, buildTestApp, decodeJwt, me, registerUser, signWith } from '../helper.js'

/** The same token with `sub` and/or `sid` upper-cased, signed with the app's own key. */
function upperCased(privateKeyPem: string, token: string, claims: Array<'sub' | 'sid'>): string {
  const { header, payload } = decodeJwt(token)
  for (const claim of claims) payload[claim] = String(payload[claim]).toUpperCase()
  return signWith(privateKeyPem, header, payload)
}

t.test('an upper-case variant works while the session lives and dies with it at logout', async (t) => {
  const { app, privateKeyPem } = await buildTestApp(t)
  const pair = await registerUser(app)
  const variants = (['sid', 'sub'] as const).map((claim) => upperCased(privateKeyPem, pair.access_token, [claim]))
  variants.push(upperCased(privateKeyPem, pair.access_token, ['sid', 'sub']))
  for (const variant of variants) {
    const res = await app.inject({ method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(variant) })
    t.equal(res.statusCode, 204, 'a genuine token of a live session')
    t.equal(res.headers['x-session-id'], decodeJwt(pair.access_token).payload.sid, 'ids answered canonical')
    t.equal(res.headers['x-user-id'], pair.user.id)
  }

  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })).statusCode, 204)
  for (const variant of variants) {
    t.equal((await me(app, variant)).statusCode, 401, 'dead at once after logout')
    const verify = await app.inject({ method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(variant) })
    t.equal(verify.statusCode, 401)
    t.equal(verify.headers['www-authenticate'], 'Bearer error="invalid_token"')
  }
})

t.test('logging out with the upper-case variant ends the session for the original too', async (t) => {
  const { app, privateKeyPem } = await buildTestApp(t)
  const pair = await registerUser(app)
  t.equal((await me(app, pair.access_token)).statusCode, 200, 'the original is cached as alive')
  const variant = upperCased(privateKeyPem, pair.access_token, ['sid', 'sub'])
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(variant) })).statusCode, 204)
  t.equal((await me(app, pair.access_token)).statusCode, 401)
})

t.test('DELETE /sessions/:id takes the id in any case and ends that session everywhere', async (t) => {
  const { app } = await buildTestApp(t)
  const pair = await registerUser(app)
  const sid = decodeJwt(pair.access_token).payload.sid as string
  t.equal((await me(app, pair.access_token)).statusCode, 200)
  const res = await app.inject({ method: 'DELETE', url: `${API_PREFIX}/sessions/${sid.toUpperCase()}`, headers: bearer(pair.access_token) })
  t.equal(res.statusCode, 204)
  t.equal((await me(app, pair.access_token)).statusCode, 401, 'the cached "alive" answer is gone')
})
