// A refresh rewrites the session row in place: no indexed column changes, so PostgreSQL makes it
// a HOT update and touches no index (migrations/2026_12_01_1000_hot_refresh_rotation.ts). The
// counters of the test's own transaction say which kind of update it was.
import { sql } from 'kysely'
import t from 'tap'
import { rotateRefreshJti } from '../../src/repositories/sessions.js'
import { buildTestApp, decodeJwt, registerUser } from '../helper.js'

t.test('rotating a refresh token is a HOT update of the session row', async (t) => {
  const { app, clock } = await buildTestApp(t)
  const pair = await registerUser(app)
  const { sub, sid, jti } = decodeJwt(pair.refresh_token).payload

  const counts = await app.db.transaction().execute(async (trx) => {
    const rotated = await rotateRefreshJti(trx, {
      sessionId: sid,
      userId: sub,
      currentHash: app.tokens.hashJti(jti),
      nextHash: app.tokens.hashJti(app.tokens.nextRefreshJti(jti)),
      now: clock.now()
    })
    t.equal(rotated?.id, sid, 'the session rotated')
    const { rows } = await sql<{ updated: string, hot: string }>`
      select n_tup_upd as updated, n_tup_hot_upd as hot from pg_stat_xact_user_tables where relname = 'user_sessions'`.execute(trx)
    return rows[0]
  })
  t.equal(Number(counts.updated), 1, 'one row updated')
  t.equal(Number(counts.hot), 1, 'and it was a heap-only tuple update')
})
