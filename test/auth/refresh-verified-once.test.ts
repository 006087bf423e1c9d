// A refresh token is verified once per request, whatever the rate-limit setting: the per-session
// limiter and the handler share one verdict (plugins/auth.ts, refreshTokenOf).
import t from 'tap'
import { buildTestApp, recordVerifications, refresh, registerUser } from '../helper.js'

for (const rateLimit of ['on', 'off']) {
  t.test(`RATE_LIMIT=${rateLimit}: one verification per POST /refresh`, async (t) => {
    const { app } = await buildTestApp(t, { env: { RATE_LIMIT: rateLimit } })
    const pair = await registerUser(app)
    const verifications = recordVerifications(app)

    const res = await refresh(app, pair.refresh_token)
    t.equal(res.statusCode, 200)
    t.same(verifications, ['refresh'], 'verified once')

    verifications.length = 0
    t.equal((await refresh(app, 'not-a-token')).statusCode, 401)
    t.same(verifications, ['refresh'], 'a bad token is checked once too')
  })
}
