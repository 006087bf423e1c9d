// docs/api.md, "POST /refresh": the grace window, theft detection, concurrent
// refreshes and refresh racing logout. On PostgreSQL (TEST_DATABASE_URL) the concurrency is real:
// the pool runs the statements on separate connections.
import t from 'tap'
import { API_PREFIX, bearer, buildTestApp, countSessions, decodeJwt, me, refresh, registerUser } from '../helper.js'

t.test('within the grace window the just-rotated token gets the same new refresh token back', async (t) => {
  const { app, clock } = await buildTestApp(t)
  const pair = await registerUser(app)
  const first = await refresh(app, pair.refresh_token)
  t.equal(first.statusCode, 200)
  clock.advance(5) // the default REFRESH_REUSE_GRACE is 10 s
  const retry = await refresh(app, pair.refresh_token)
  t.equal(retry.statusCode, 200, 'a retry after a lost response is not theft')
  t.equal(retry.json().refresh_token, first.json().refresh_token, 'the very same refresh token')
  t.equal(decodeJwt(retry.json().refresh_token).payload.jti, decodeJwt(first.json().refresh_token).payload.jti)
  t.equal((await me(app, retry.json().access_token)).statusCode, 200, 'with a valid access token')

  const next = await refresh(app, retry.json().refresh_token)
  t.equal(next.statusCode, 200, 'the shared current token rotates normally')
  t.equal(await countSessions(app, pair.user.id), 1)
})

t.test('a rotated-away token presented after the grace window is theft: the whole session dies', async (t) => {
  const { app, clock } = await buildTestApp(t)
  const pair = await registerUser(app)
  const rotated = (await refresh(app, pair.refresh_token)).json()
  clock.advance(11)
  const stolen = await refresh(app, pair.refresh_token)
  t.equal(stolen.statusCode, 401)
  t.match(stolen.json(), { statusCode: 401, code: 'AUTH_REFRESH_TOKEN_REUSED' })
  t.equal(await countSessions(app, pair.user.id), 0, 'session deleted')
  t.equal((await refresh(app, rotated.refresh_token)).statusCode, 401, "the victim's current refresh token is dead")
  t.equal((await me(app, rotated.access_token)).statusCode, 401, 'its access tokens too')
  t.equal((await me(app, pair.access_token)).statusCode, 401)
})

t.test('a token two generations back is theft even inside the grace window', async (t) => {
  const { app } = await buildTestApp(t)
  const pair = await registerUser(app)
  const second = (await refresh(app, pair.refresh_token)).json()
  const third = (await refresh(app, second.refresh_token)).json()
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 401)
  t.equal(await countSessions(app, pair.user.id), 0)
  t.equal((await me(app, third.access_token)).statusCode, 401)
})

t.test('REFRESH_REUSE_GRACE=0: every reuse is theft', async (t) => {
  const { app } = await buildTestApp(t, { env: { REFRESH_REUSE_GRACE: '0' } })
  const pair = await registerUser(app)
  const rotated = await refresh(app, pair.refresh_token)
  t.equal(rotated.statusCode, 200)
  t.equal((await refresh(app, pair.refresh_token)).statusCode, 401)
  t.equal(await countSessions(app, pair.user.id), 0)
  t.equal((await refresh(app, rotated.json().refresh_token)).statusCode, 401)
})

t.test('20 concurrent refreshes with one token: all 200, one new jti, one session', async (t) => {
  const { app } = await buildTestApp(t)
  const pair = await registerUser(app)
  const answers = await Promise.all(Array.from({ length: 20 }, () => refresh(app, pair.refresh_token)))
  t.same(answers.map((res) => res.statusCode), Array(20).fill(200), 'all 200, never a 500 or a deadlock')
  const jtis = new Set(answers.map((res) => decodeJwt(res.json().refresh_token).payload.jti))
  t.equal(jtis.size, 1, 'one current refresh token for the session')
  t.equal(new Set(answers.map((res) => res.json().refresh_token)).size, 1)
  t.equal(await countSessions(app, pair.user.id), 1)
  const row = await app.db.selectFrom('user_sessions').select('refresh_jti_hash').where('user_id', '=', pair.user.id).executeTakeFirstOrThrow()
  t.equal(row.refresh_jti_hash, app.tokens.hashJti([...jtis][0]), 'the stored hash is that jti')
  t.equal((await refresh(app, answers[0].json().refresh_token)).statusCode, 200, 'and it rotates on')
})

t.test('refresh racing logout never brings the session back', async (t) => {
  const { app } = await buildTestApp(t)
  const pair = await registerUser(app)
  const email = pair.user.email
  let refreshWon = 0
  for (let round = 0; round < 25; round++) {
    const login = await app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password: 'correct horse battery staple' } })
    const session = login.json()
    const sid = decodeJwt(session.access_token).payload.sid
    const [logout, refreshed] = await Promise.all([
      app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(session.access_token) }),
      refresh(app, session.refresh_token)
    ])
    t.equal(logout.statusCode, 204, `round ${round}: logout answered 204`)
    t.ok([200, 401].includes(refreshed.statusCode), `round ${round}: refresh is 200 (before) or 401 (after), got ${refreshed.statusCode}`)
    const row = await app.db.selectFrom('user_sessions').select('id').where('id', '=', sid).executeTakeFirst()
    t.equal(row, undefined, `round ${round}: the session stays deleted`)
    if (refreshed.statusCode === 200) {
      refreshWon += 1
      t.equal((await me(app, refreshed.json().access_token)).statusCode, 401, 'the refreshed access token is dead')
      t.equal((await refresh(app, refreshed.json().refresh_token)).statusCode, 401, 'the refreshed refresh token is dead')
    }
    t.equal((await refresh(app, session.refresh_token)).statusCode, 401)
  }
  t.comment(`refresh finished first in ${refreshWon} of 25 rounds`)
  t.equal(await countSessions(app, pair.user.id), 1, 'only the registration session is left')
})
