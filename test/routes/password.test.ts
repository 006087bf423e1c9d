import t from 'tap'
import {
  API_PREFIX,
  PASSWORD,
  bearer,
  buildTestApp,
  countSessions,
  decodeJwt,
  errorShape,
  loginUser,
  me,
  refresh,
  registerUser
} from '../helper.js'

const { app } = await buildTestApp(t)
const url = `${API_PREFIX}/password`
const NEW_PASSWORD = 'a brand new passphrase 2026'

function changePassword(accessToken: string | undefined, payload: unknown, headers: Record<string, string> = {}, target = app) {
  return target.inject({
    method: 'POST',
    url,
    headers: { ...(accessToken ? bearer(accessToken) : {}), ...headers },
    payload: payload as string
  })
}

function loginStatus(email: string, password: string): Promise<number> {
  return app
    .inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password } })
    .then((res) => res.statusCode)
}

/** A user with three sessions: `current` (the one that changes the password), `other1`, `other2`. */
async function userWithThreeSessions() {
  const current = await registerUser(app)
  const other1 = await loginUser(app, current.user.email)
  const other2 = await loginUser(app, current.user.email)
  return { current, others: [other1, other2], email: current.user.email, userId: current.user.id }
}

t.test('204: the password changes, every other session is deleted, the current one survives', async (t) => {
  const { current, others, email, userId } = await userWithThreeSessions()
  const bystander = await registerUser(app)
  t.equal(await countSessions(app, userId), 3)

  const res = await changePassword(current.access_token, { current_password: PASSWORD, new_password: NEW_PASSWORD })
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal(await countSessions(app, userId), 1, 'only the current session is left')
  const [row] = await app.db.selectFrom('user_sessions').select('id').where('user_id', '=', userId).execute()
  t.equal(row.id, decodeJwt(current.access_token).payload.sid, 'the one left is the current session')

  for (const [i, other] of others.entries()) {
    const profile = await me(app, other.access_token)
    t.equal(profile.statusCode, 401, `other session ${i}: its access token is dead`)
    t.equal(profile.headers['www-authenticate'], 'Bearer error="invalid_token"')
    t.equal((await refresh(app, other.refresh_token)).statusCode, 401, `other session ${i}: its refresh token is dead`)
  }
  t.equal((await me(app, current.access_token)).statusCode, 200, 'the current access token works')
  const rotated = await refresh(app, current.refresh_token)
  t.equal(rotated.statusCode, 200, 'the current refresh token works')

  t.equal(await loginStatus(email, PASSWORD), 401, 'the old password no longer logs in')
  t.equal(await loginStatus(email, NEW_PASSWORD), 200, 'the new one does')
  t.equal(await countSessions(app, bystander.user.id), 1, "other users' sessions are untouched")
  t.equal((await me(app, bystander.access_token)).statusCode, 200)

  const stored = await app.db.selectFrom('users').select('password_hash').where('id', '=', userId).executeTakeFirstOrThrow()
  t.notOk(stored.password_hash.includes(NEW_PASSWORD), 'the password is stored hashed')
  t.match(stored.password_hash, /^\$argon2id\$/)
})

t.test('a wrong current password is 401 and changes nothing', async (t) => {
  const { current, others, email, userId } = await userWithThreeSessions()
  const res = await changePassword(current.access_token, { current_password: 'not my password', new_password: NEW_PASSWORD })
  t.equal(res.statusCode, 401)
  t.match(res.json(), errorShape(401))
  t.match(res.headers['www-authenticate'], /^Bearer\b/, 'every 401 of a Bearer endpoint carries WWW-Authenticate')
  t.notOk(res.body.includes('not my password') || res.body.includes(NEW_PASSWORD), 'no password in the error')
  t.equal(await countSessions(app, userId), 3, 'no session was deleted')
  t.equal((await me(app, current.access_token)).statusCode, 200, 'the caller is still logged in')
  t.equal((await me(app, others[0].access_token)).statusCode, 200, 'and so are the others')
  t.equal(await loginStatus(email, NEW_PASSWORD), 401, 'the new password was not set')
  t.equal(await loginStatus(email, PASSWORD), 200, 'the old one still works')
})

t.test('400 for invalid bodies, and nothing changes', async (t) => {
  const { current, email, userId } = await userWithThreeSessions()
  const json = { 'content-type': 'application/json' }
  const cases: Array<[string, unknown, Record<string, string>?]> = [
    ['missing current_password', { new_password: NEW_PASSWORD }],
    ['missing new_password', { current_password: PASSWORD }],
    ['empty current_password', { current_password: '', new_password: NEW_PASSWORD }],
    ['new_password of 7 characters', { current_password: PASSWORD, new_password: 'short12' }],
    ['new_password over 256 characters', { current_password: PASSWORD, new_password: 'n'.repeat(257) }],
    ['new_password as a number', { current_password: PASSWORD, new_password: 123456789 }],
    ['current_password as null', { current_password: null, new_password: NEW_PASSWORD }],
    ['unknown property', { current_password: PASSWORD, new_password: NEW_PASSWORD, logout_others: false }],
    ['camelCase names', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }],
    ['JSON array', JSON.stringify([PASSWORD, NEW_PASSWORD]), json],
    ['malformed JSON', `{"current_password":"${PASSWORD}","new_password":"${NEW_PASSWORD}"`, json],
    ['no body', undefined, json]
  ]
  for (const [name, payload, headers] of cases) {
    const res = await changePassword(current.access_token, payload, headers)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), errorShape(400), name)
    t.notOk(res.body.includes(PASSWORD) || res.body.includes(NEW_PASSWORD), `${name}: no password in the error`)
  }
  const form = await changePassword(current.access_token, `current_password=x&new_password=y`, {
    'content-type': 'application/x-www-form-urlencoded'
  })
  t.equal(form.statusCode, 415, 'a form body is 415')
  t.equal(await countSessions(app, userId), 3, 'no session was deleted')
  t.equal(await loginStatus(email, PASSWORD), 200, 'the password is unchanged')
})

t.test('401 without a valid access token, and nothing changes', async (t) => {
  const { current, email, userId } = await userWithThreeSessions()
  const body = { current_password: PASSWORD, new_password: NEW_PASSWORD }
  const missing = await changePassword(undefined, body)
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer')
  t.match(missing.json(), errorShape(401))
  const refreshToken = await changePassword(current.refresh_token, body)
  t.equal(refreshToken.statusCode, 401, 'a refresh token is not an access token')
  t.equal(refreshToken.headers['www-authenticate'], 'Bearer error="invalid_token"')
  const garbage = await changePassword('garbage', body)
  t.equal(garbage.statusCode, 401)
  t.equal(garbage.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal(await countSessions(app, userId), 3)
  t.equal(await loginStatus(email, PASSWORD), 200, 'the password is unchanged')
})

t.test('the access token of a session ended by a password change cannot change it back', async (t) => {
  const { current, others, email } = await userWithThreeSessions()
  t.equal((await changePassword(current.access_token, { current_password: PASSWORD, new_password: NEW_PASSWORD })).statusCode, 204)
  const res = await changePassword(others[0].access_token, { current_password: NEW_PASSWORD, new_password: PASSWORD })
  t.equal(res.statusCode, 401)
  t.equal(await loginStatus(email, NEW_PASSWORD), 200)
})

t.test('429 once the rate limit is exhausted', async (t) => {
  const limited = await buildTestApp(t, { env: { RATE_LIMIT: 'on', RATE_LIMIT_ACCOUNT_MAX: '3', RATE_LIMIT_IP_MAX: '100' } })
  const pair = await registerUser(limited.app)
  const attempt = (currentPassword: string) =>
    changePassword(pair.access_token, { current_password: currentPassword, new_password: NEW_PASSWORD }, {}, limited.app)
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await attempt('wrong password')).statusCode)
  t.same(statuses, [401, 401, 401], 'the first wrong guesses are answered normally')
  const res = await attempt('wrong password')
  t.equal(res.statusCode, 429, 'then 429')
  t.match(res.json(), errorShape(429))
  t.equal((await attempt(PASSWORD)).statusCode, 429, 'even with the right password, while limited')
  t.equal(await countSessions(limited.app, pair.user.id), 1)
  t.equal((await me(limited.app, pair.access_token)).statusCode, 200, 'the session itself is not harmed')
})
