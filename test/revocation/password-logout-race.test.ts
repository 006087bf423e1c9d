// A POST /password racing a POST /logout of the same session must never commit after the
// logout's 204 (docs/api.md, "POST /password"). The password change takes the session row in its
// own transaction: if the logout deleted it first, the change is refused (401, nothing changed);
// if the change took it first, the logout's DELETE waits for the change to commit.
//
// The invariant checked after every try, whatever the interleaving (it is an implication over what
// the database recorded, so it cannot flake): the logout answered 204 and then either
// - the password change answered 401 `AUTH_INVALID_TOKEN`, the stored hash is the old one (the old
//   password still works) and no `password_changed` event was recorded, or
// - it answered 204, the new password is stored, and its `password_changed` event comes before the
//   logout's event in auth_events' sequence. The logout's event is written by its DELETE, which
//   (with the fix) waits on the row the change holds until the change commits; without the fix
//   the DELETE runs while the change is still hashing, and its event comes first.
//
// Both engines. On PostgreSQL the two requests run on two pool connections, so the DELETE can
// also arrive while the change's transaction holds the row (it waits). On PGlite (one connection,
// transactions serialised by the dialect) that interleaving cannot happen, but the one the bug is
// about does the same way: the logout commits while the change is hashing (argon2 runs outside
// the transaction), and the change's transaction must then see the session gone.
import t, { type Test } from 'tap'
import { holdLiveSession } from '../../src/repositories/sessions.js'
import { verifyPassword } from '../../src/services/passwords.js'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, decodeJwt, me, registerUser, type TestContext } from '../helper.js'

const NEW_PASSWORD = 'a brand new passphrase 2026'
const TRIES = 40

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Outcome {
  password: number
  passwordCode?: string
  logout: number
}

async function storedHash(ctx: TestContext, userId: string): Promise<string> {
  const row = await ctx.app.db.selectFrom('users').select('password_hash').where('id', '=', userId).executeTakeFirstOrThrow()
  return row.password_hash
}

/** The sequence ids of the session's password_changed and (its own) logout events. */
async function eventIds(ctx: TestContext, sessionId: string) {
  const rows = await ctx.app.db
    .selectFrom('auth_events')
    .select(['id', 'kind'])
    .where('session_id', '=', sessionId)
    .where('kind', 'in', ['password_changed', 'logout'])
    .orderBy('id')
    .execute()
  return {
    passwordChanged: rows.filter((row) => row.kind === 'password_changed').map((row) => Number(row.id)),
    logout: rows.filter((row) => row.kind === 'logout').map((row) => Number(row.id))
  }
}

/**
 * One try: a fresh user and session (cached live, as in production), then POST /password and,
 * `logoutDelayMs` after it started, POST /logout; `logoutFirst` awaits the logout's 204 first.
 */
async function race(ctx: TestContext, logoutDelayMs: number, logoutFirst = false) {
  const pair = await registerUser(ctx.app)
  const sessionId = decodeJwt(pair.access_token).payload.sid as string
  if ((await me(ctx.app, pair.access_token)).statusCode !== 200) throw new Error('the new session is not live')
  const oldHash = await storedHash(ctx, pair.user.id)

  const changePassword = () => ctx.app.inject({
    method: 'POST',
    url: `${API_PREFIX}/password`,
    headers: bearer(pair.access_token),
    payload: { current_password: PASSWORD, new_password: NEW_PASSWORD }
  })
  const logout = () => ctx.app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })

  let passwordRes, logoutRes
  if (logoutFirst) {
    logoutRes = await logout()
    passwordRes = await changePassword()
  } else {
    ;[passwordRes, logoutRes] = await Promise.all([changePassword(), sleep(logoutDelayMs).then(logout)])
  }
  const outcome: Outcome = {
    password: passwordRes.statusCode,
    passwordCode: passwordRes.statusCode === 204 ? undefined : passwordRes.json().code,
    logout: logoutRes.statusCode
  }

  const hash = await storedHash(ctx, pair.user.id)
  const events = await eventIds(ctx, sessionId)
  const sessionLeft = await ctx.app.db.selectFrom('user_sessions').select('id').where('id', '=', sessionId).executeTakeFirst()
  const loggedOut = outcome.logout === 204 && sessionLeft === undefined
  let verdict: string
  if (outcome.password === 401 && outcome.passwordCode === 'AUTH_INVALID_TOKEN') {
    verdict = hash === oldHash && events.passwordChanged.length === 0 ? 'refused, nothing changed' : 'refused, but changed'
  } else if (outcome.password === 204) {
    const [changedAt] = events.passwordChanged
    const [loggedOutAt] = events.logout
    verdict = hash === oldHash || !(await verifyPassword(hash, NEW_PASSWORD))
      ? '204, but the new password is not stored'
      : changedAt !== undefined && loggedOutAt !== undefined && changedAt < loggedOutAt
        ? 'changed before the logout'
        : '204, committed after the logout'
  } else {
    verdict = 'unexpected status'
  }
  return { ...outcome, loggedOut, verdict, events }
}

type RaceResult = Awaited<ReturnType<typeof race>>

function assertInvariant(t: Test, label: string, result: RaceResult) {
  t.ok(result.loggedOut, `${label}: logout 204 and the session is gone`, result)
  t.ok(['refused, nothing changed', 'changed before the logout'].includes(result.verdict),
    `${label}: the password change was refused, or committed before the logout`, result)
}

t.test('POST /password racing POST /logout of the same session', async (t) => {
  const ctx = await buildTestApp(t)

  // How long a password change takes here (two argon2 runs): the logout delays cover it.
  const probe = await registerUser(ctx.app)
  const t0 = performance.now()
  const res = await ctx.app.inject({
    method: 'POST',
    url: `${API_PREFIX}/password`,
    headers: bearer(probe.access_token),
    payload: { current_password: PASSWORD, new_password: NEW_PASSWORD }
  })
  t.equal(res.statusCode, 204, 'a password change alone succeeds')
  const changeMs = performance.now() - t0
  t.comment(`a password change takes ${changeMs.toFixed(0)} ms`)

  const counts = { refused: 0, changedFirst: 0 }
  for (let i = 0; i < TRIES; i++) {
    // Logout delays from 0 to a bit past the change's duration: during the hashing, around the
    // transaction, and after it.
    const delay = (changeMs * 1.3 * i) / TRIES
    const outcome = await race(ctx, delay)
    assertInvariant(t, `try ${i} (logout after ${delay.toFixed(0)} ms)`, outcome)
    if (outcome.verdict === 'refused, nothing changed') counts.refused += 1
    if (outcome.verdict === 'changed before the logout') counts.changedFirst += 1
  }
  t.comment(`concurrent: ${counts.refused} refused (the logout came first), ${counts.changedFirst} changed before the logout, of ${TRIES}`)
  t.ok(counts.refused > 0, 'some tries had the logout land while the change was in flight')

  for (let i = 0; i < 5; i++) {
    const outcome = await race(ctx, 0, true)
    assertInvariant(t, `logout first, try ${i}`, outcome)
    t.equal(outcome.password, 401, `logout first, try ${i}: the change is refused`)
  }
})

const onPglite = process.env.TEST_DATABASE_URL ? false : 'PostgreSQL only: on PGlite every query waits for an open transaction (one connection), so this shows nothing'

t.test('a logout waits for a password change holding its session, then ends it', { skip: onPglite }, async (t) => {
  const ctx = await buildTestApp(t)
  const pair = await registerUser(ctx.app)
  const sessionId = decodeJwt(pair.access_token).payload.sid as string
  let logoutStatus: number | undefined
  await ctx.app.db.transaction().execute(async (trx) => {
    t.ok(await holdLiveSession(trx, sessionId, pair.user.id, new Date()), 'the session is held')
    const logout = ctx.app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
    void logout.then((res) => (logoutStatus = res.statusCode))
    await sleep(300)
    t.equal(logoutStatus, undefined, 'the logout is still waiting while the transaction is open')
    t.ok(await holdLiveSession(trx, sessionId, pair.user.id, new Date()), 'and the session is still there')
  })
  for (let i = 0; i < 200 && logoutStatus === undefined; i++) await sleep(10)
  t.equal(logoutStatus, 204, 'after the commit the logout ends the session')
  const left = await ctx.app.db.selectFrom('user_sessions').select('id').where('id', '=', sessionId).executeTakeFirst()
  t.equal(left, undefined)
})
