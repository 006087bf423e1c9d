// The Fastify plugin against the real service: app.requireAuth and request.auth, the RFC 6750
// answers, a logout reaching the app, 503 with Retry-After while stale, the stream deleted on close.
import Fastify from 'fastify'
import t from 'tap'
import authVerifier from '../src/index.js'
import { API, eventually, hasTransmitter, logout, machineToken, NO_TRANSMITTER, register, startAuth, type Auth } from './support.js'

function downstream(auth: Auth, extra: Record<string, unknown> = {}) {
  const app = Fastify()
  app.register(authVerifier, {
    issuer: auth.url,
    audience: 'api',
    clientId: auth.client.clientId,
    clientSecret: auth.client.clientSecret,
    readyTimeoutMs: 15_000,
    ...extra
  })
  app.after(() => {
    app.get('/orders', { onRequest: app.requireAuth }, async (request) => ({ sub: request.auth.sub, sid: request.auth.sid }))
    app.get('/public', async () => ({ ok: true }))
  })
  return app
}

t.test('the Fastify plugin', async (t) => {
  const auth = await startAuth(t, { env: { SSF_POLL_TIMEOUT: '2s' } })
  if (!(await hasTransmitter(auth))) {
    t.test('plugin', { skip: NO_TRANSMITTER }, () => {})
    return
  }

  t.test('requireAuth, request.auth, a logout, the stream deleted on close', async (t) => {
    const app = downstream(auth)
    t.teardown(() => app.close())
    await app.ready()
    const session = await register(auth)

    const missing = await app.inject({ url: '/orders' })
    t.equal(missing.statusCode, 401)
    t.equal(missing.headers['www-authenticate'], 'Bearer', 'no token: a bare challenge (RFC 6750 §3.1)')
    const basic = await app.inject({ url: '/orders', headers: { authorization: 'Basic dXNlcjpwYXNz' } })
    t.equal(basic.statusCode, 401)
    t.equal(basic.headers['www-authenticate'], 'Bearer', 'another scheme: as if none')
    const garbage = await app.inject({ url: '/orders', headers: { authorization: 'Bearer not.a.token' } })
    t.equal(garbage.statusCode, 401)
    t.match(garbage.headers['www-authenticate'], /^Bearer error="invalid_token"/)
    t.equal((await app.inject({ url: '/public' })).statusCode, 200, 'an unprotected route: untouched')

    const ok = await app.inject({ url: '/orders', headers: { authorization: `Bearer ${session.accessToken}` } })
    t.equal(ok.statusCode, 200)
    t.same(ok.json(), { sub: session.userId, sid: ok.json().sid })
    t.type(ok.json().sid, 'string')

    t.equal(await logout(auth, session.accessToken), 204)
    const delay = await eventually(async () => {
      const res = await app.inject({ url: '/orders', headers: { authorization: `Bearer ${session.accessToken}` } })
      return res.statusCode === 401
    }, 5_000, '401 after the logout')
    t.comment(`logout reached the app in ${delay} ms`)
    const revoked = await app.inject({ url: '/orders', headers: { authorization: `Bearer ${session.accessToken}` } })
    t.equal(revoked.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="The session has ended"')

    const streamId = app.authVerifier.status.streamId!
    await app.close()
    const token = await machineToken(auth)
    const gone = await fetch(`${auth.url}${API}/ssf/streams?stream_id=${encodeURIComponent(streamId)}`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(gone.status, 404, 'app.close() deleted the stream')
  })

  t.test('wrong client credentials: app.ready() rejects at once', async (t) => {
    const app = downstream(auth, { clientSecret: 'not-the-secret-of-this-client-0123456789abcdef' })
    t.teardown(() => app.close())
    const started = Date.now()
    await t.rejects(async () => { await app.ready() }, { code: 'misconfigured' })
    t.ok(Date.now() - started < 5_000, 'without waiting for readyTimeoutMs')
  })

  t.test('the service stopped: 503 with Retry-After, never 200', async (t) => {
    const app = downstream(auth, { staleAfterMs: 1_000, requestTimeoutMs: 1_000 })
    t.teardown(() => app.close())
    await app.ready()
    const session = await register(auth)
    t.equal((await app.inject({ url: '/orders', headers: { authorization: `Bearer ${session.accessToken}` } })).statusCode, 200)
    await auth.stop()
    const stoppedAt = Date.now()
    let last200 = -Infinity
    await eventually(async () => {
      const res = await app.inject({ url: '/orders', headers: { authorization: `Bearer ${session.accessToken}` } })
      if (res.statusCode === 200) last200 = Date.now() - stoppedAt
      return res.statusCode === 503
    }, 5_000, '503')
    t.ok(last200 <= 1_100, `200 only within staleAfterMs of the last contact (last at ${last200} ms)`)
    const res = await app.inject({ url: '/orders', headers: { authorization: `Bearer ${session.accessToken}` } })
    t.equal(res.statusCode, 503)
    t.equal(res.headers['retry-after'], '5')
    t.equal(res.json().statusCode, 503)
  })
})
