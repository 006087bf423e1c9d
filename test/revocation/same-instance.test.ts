// A logout ends every token of the session at once, liveness is answered from a bounded cache
// fed by LISTEN/NOTIFY, and the check fails closed.
import t from 'tap'
import { API_PREFIX, bearer, buildTestApp, me, registerUser, type TestContext } from '../helper.js'

/** Polls `check` every few milliseconds until it is true; false after `timeoutMs`. */
async function eventually(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return check()
}

async function feedReady(ctx: TestContext): Promise<boolean> {
  return eventually(async () => ctx.app.sessionLiveness.feedHealthy)
}

t.test('logout, then /me and /verify with the same access token: 401 at once', async (t) => {
  const ctx = await buildTestApp(t)
  t.ok(await feedReady(ctx), 'revocation feed is listening')
  const pair = await registerUser(ctx.app)
  // Twice, so the second answer comes from the cache.
  t.equal((await me(ctx.app, pair.access_token)).statusCode, 200)
  t.equal((await me(ctx.app, pair.access_token)).statusCode, 200)
  t.ok(ctx.app.sessionLiveness.cacheSize >= 1, 'the live session is cached')

  const logout = await ctx.app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  t.equal(logout.statusCode, 204)
  t.equal((await me(ctx.app, pair.access_token)).statusCode, 401)
  const verify = await ctx.app.inject({ method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(pair.access_token) })
  t.equal(verify.statusCode, 401)
})

t.test('a session deleted behind this instance\'s back (another instance, an operator) dies through NOTIFY', async (t) => {
  const ctx = await buildTestApp(t)
  t.ok(await feedReady(ctx))
  const pair = await registerUser(ctx.app)
  t.equal((await me(ctx.app, pair.access_token)).statusCode, 200, 'cached as live')

  // Not through the service: nothing tells this instance but the database trigger.
  await ctx.app.db.deleteFrom('user_sessions').where('user_id', '=', pair.user.id).execute()
  const revoked = await eventually(async () => (await me(ctx.app, pair.access_token)).statusCode === 401)
  t.ok(revoked, 'the cached "live" answer was replaced by the notification')
})

t.test('every kind of deletion reaches the cache: all devices, password change, delete by id, expiry clean-up', async (t) => {
  const ctx = await buildTestApp(t, { env: { ACCESS_TOKEN_TTL: '15m', REFRESH_TOKEN_TTL: '1h' }, ownDatabase: true })
  t.ok(await feedReady(ctx))
  const first = await registerUser(ctx.app)
  const login = async () => {
    const res = await ctx.app.inject({
      method: 'POST',
      url: `${API_PREFIX}/login`,
      payload: { email: first.user.email, password: 'correct horse battery staple' }
    })
    return res.json()
  }

  const second = await login()
  t.equal((await me(ctx.app, second.access_token)).statusCode, 200)
  const del = await ctx.app.inject({
    method: 'DELETE',
    url: `${API_PREFIX}/sessions/${JSON.parse(Buffer.from(second.access_token.split('.')[1], 'base64url').toString()).sid}`,
    headers: bearer(first.access_token)
  })
  t.equal(del.statusCode, 204)
  t.equal((await me(ctx.app, second.access_token)).statusCode, 401, 'deleted by id')

  const third = await login()
  t.equal((await me(ctx.app, third.access_token)).statusCode, 200)
  const all = await ctx.app.inject({
    method: 'POST',
    url: `${API_PREFIX}/logout`,
    headers: bearer(first.access_token),
    payload: { all_devices: true }
  })
  t.equal(all.statusCode, 204)
  t.equal((await me(ctx.app, first.access_token)).statusCode, 401, 'all devices: this one')
  t.equal((await me(ctx.app, third.access_token)).statusCode, 401, 'all devices: the other one')

  const fourth = await login()
  t.equal((await me(ctx.app, fourth.access_token)).statusCode, 200)
  // The access token is valid for 15 minutes but the session ends after an hour: move past the
  // session's end, run the clean-up, and the token's session is gone.
  ctx.clock.advance(3_601)
  t.equal((await ctx.app.runHousekeeping()).expiredSessions, 1, 'the clean-up deleted the expired session')
  const left = await ctx.app.db.selectFrom('user_sessions').select('id').where('user_id', '=', first.user.id).execute()
  t.same(left, [], 'no session of the user is left')
})

/** A session row written straight to the table, made at `at` and ending at `expiresAt`. */
function sessionRow(userId: string, at: Date, expiresAt: Date) {
  const id = crypto.randomUUID()
  return {
    id, user_id: userId, refresh_jti_hash: `expired-${id}`, previous_jti_hash: null,
    rotated_at: at, created_at: at, last_used_at: at, expires_at: expiresAt, user_agent: null, ip: null
  }
}

t.test('expired sessions are deleted in bounded batches', async (t) => {
  const ctx = await buildTestApp(t, { env: { REFRESH_TOKEN_TTL: '1h' }, ownDatabase: true })
  const user = await registerUser(ctx.app)
  const now = ctx.clock.now()
  const rows = Array.from({ length: 2_500 }, () => sessionRow(user.user.id, now, new Date(now.getTime() - 1_000)))
  for (let i = 0; i < rows.length; i += 500) await ctx.app.db.insertInto('user_sessions').values(rows.slice(i, i + 500)).execute()

  t.equal((await ctx.app.runHousekeeping()).expiredSessions, 2_500)
  t.equal((await me(ctx.app, user.access_token)).statusCode, 200, 'the live session is untouched')
  t.equal((await ctx.app.runHousekeeping()).expiredSessions, 0, 'nothing left to clean')
})

t.test('deleting a session long expired notifies no instance; live and just-expired ones are announced', async (t) => {
  // Its own database: on a shared one, other files' deletes would be counted too.
  const ctx = await buildTestApp(t, { ownDatabase: true })
  t.ok(await feedReady(ctx))
  const user = await registerUser(ctx.app)
  const expiredSession = async (secondsAgo: number) => {
    const at = new Date(Date.now() - secondsAgo * 1000)
    const row = sessionRow(user.user.id, at, at)
    await ctx.app.db.insertInto('user_sessions').values(row).execute()
    return row.id
  }
  const notified = async () => (await ctx.app.authMetrics.revocationNotifications.get()).values[0]?.value ?? 0
  const deleteSession = (id: string) => ctx.app.db.deleteFrom('user_sessions').where('id', '=', id).execute()

  const longExpired = await expiredSession(600)
  const justExpired = await expiredSession(10)
  const before = await notified()
  await deleteSession(longExpired)
  await deleteSession(justExpired)
  const logout = await ctx.app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(user.access_token) })
  t.equal(logout.statusCode, 204)
  // Notifications arrive in commit order: once the logout's is in, any earlier one would be too.
  t.ok(await eventually(async () => (await notified()) >= before + 2), 'the just-expired and the live session were announced')
  t.equal(await notified(), before + 2, 'the session expired ten minutes ago was not')
})

t.test('the periodic clean-up runs on its own when SESSION_CLEANUP_INTERVAL is set', async (t) => {
  const ctx = await buildTestApp(t, { env: { SESSION_CLEANUP_INTERVAL: '1s', REFRESH_TOKEN_TTL: '1h' }, ownDatabase: true })
  const user = await registerUser(ctx.app)
  ctx.clock.advance(3_601)
  const cleaned = await eventually(async () => {
    const row = await ctx.app.db.selectFrom('user_sessions').select('id').where('user_id', '=', user.user.id).executeTakeFirst()
    return row === undefined
  }, 10_000)
  t.ok(cleaned, 'the expired session was deleted by the timer')
})

t.test('the cache stays within SESSION_CACHE_SIZE however many sessions are checked', async (t) => {
  const ctx = await buildTestApp(t, { env: { SESSION_CACHE_SIZE: '10' } })
  t.ok(await feedReady(ctx))
  const pairs = []
  for (let i = 0; i < 30; i++) pairs.push(await registerUser(ctx.app))
  for (const pair of pairs) t.equal((await me(ctx.app, pair.access_token)).statusCode, 200)
  t.ok(ctx.app.sessionLiveness.cacheSize <= 10, `cache holds ${ctx.app.sessionLiveness.cacheSize} of at most 10`)

  // Evicted sessions are checked in the database again: still right both ways.
  const evicted = pairs[0]
  t.equal((await me(ctx.app, evicted.access_token)).statusCode, 200)
  await ctx.app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(evicted.access_token) })
  t.equal((await me(ctx.app, evicted.access_token)).statusCode, 401)
})

t.test('SESSION_CACHE_SIZE=0 turns the cache off: every check asks the database', async (t) => {
  const ctx = await buildTestApp(t, { env: { SESSION_CACHE_SIZE: '0' } })
  const pair = await registerUser(ctx.app)
  t.equal((await me(ctx.app, pair.access_token)).statusCode, 200)
  t.equal(ctx.app.sessionLiveness.cacheSize, 0)
  await ctx.app.db.deleteFrom('user_sessions').where('user_id', '=', pair.user.id).execute()
  t.equal((await me(ctx.app, pair.access_token)).statusCode, 401, 'no notification needed')
})

t.test('checks arriving together share a database query; each gets its own session\'s answer', async (t) => {
  const ctx = await buildTestApp(t, { env: { SESSION_CACHE_SIZE: '0', PG_POOL_SIZE: '4' } })
  const first = await registerUser(ctx.app)
  const pairs = [first]
  for (let i = 0; i < 29; i++) pairs.push(await registerUser(ctx.app))
  const ended = pairs[7]
  t.equal((await ctx.app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(ended.access_token) })).statusCode, 204)

  const queries = async () => (await ctx.app.authMetrics.livenessQueries.get()).values[0]?.value ?? 0
  const before = await queries()
  const answers = await Promise.all(pairs.map((pair) => ctx.app.inject({ method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(pair.access_token) })))
  t.same(answers.map((res) => res.statusCode), pairs.map((pair) => (pair === ended ? 401 : 204)), 'the ended session alone is refused')
  t.same(answers.map((res) => res.headers['x-user-id']), pairs.map((pair) => (pair === ended ? undefined : pair.user.id)), 'each answer names its own user')
  const used = (await queries()) - before
  t.ok(used >= 1 && used <= 3, `30 checks in ${used} queries`)
})

t.test('fail closed: when neither the feed nor the database can answer, protected routes give 503', { skip: process.env.TEST_DATABASE_URL ? 'stops the embedded engine; the PostgreSQL outage is covered by the health tests' : false }, async (t) => {
  const ctx = await buildTestApp(t)
  const pair = await registerUser(ctx.app)
  t.equal((await me(ctx.app, pair.access_token)).statusCode, 200, 'cached as live')
  await ctx.app.database.handle.pglite!.close()
  t.notOk(ctx.app.sessionLiveness.feedHealthy, 'the feed reports itself down')

  for (const url of ['/me', '/verify', '/sessions']) {
    const res = await ctx.app.inject({ method: 'GET', url: `${API_PREFIX}${url}`, headers: bearer(pair.access_token) })
    t.equal(res.statusCode, 503, `${url}: 503, not the cached answer`)
    t.notMatch(res.body, /at \w+ \(|node_modules/, 'no stack trace')
  }
})
