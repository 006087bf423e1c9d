// The password policy at POST /register and POST /password (docs/security.md, "Password policy"):
// a refused password is a 400 AUTH_WEAK_PASSWORD whose message says why, and it changes nothing.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { hashPassword } from '../../src/services/passwords.js'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, countSessions, countUsers, errorShape, loginUser, me } from '../helper.js'

const { app } = await buildTestApp(t)

const TOO_COMMON = 'This password is too common'
const IS_EMAIL = 'The password must not be your email address'
const IS_LOCAL_PART = 'The password must not be the part of your email address before the @'
const IS_DISPLAY_NAME = 'The password must not be your display name'
const STRONG = 'a brand new passphrase 2026'

/** A fresh account's email (local part long enough to be a password) and display name. */
function account() {
  const local = `Policy.${randomUUID().slice(0, 8)}`
  return { email: `${local}@Example.com`, local, displayName: `Grace Hopper ${randomUUID().slice(0, 4)}` }
}

/** The refused passwords for an account, each with the message it must get. */
function refusedFor({ email, local, displayName }: ReturnType<typeof account>): Array<[string, string, string]> {
  return [
    ['password', 'password', TOO_COMMON],
    ['12345678', '12345678', TOO_COMMON],
    ['qwertyui', 'qwertyui', TOO_COMMON],
    ['a common one in another case', 'PassWord1', TOO_COMMON],
    ['the email', email, IS_EMAIL],
    ['the email in another case', email.toUpperCase(), IS_EMAIL],
    ['the local part in another case', local.toUpperCase(), IS_LOCAL_PART],
    ['the display name in another case', displayName.toLowerCase(), IS_DISPLAY_NAME]
  ]
}


function register(payload: Record<string, unknown>) {
  return app.inject({ method: 'POST', url: `${API_PREFIX}/register`, payload })
}

function changePassword(accessToken: string, currentPassword: string, newPassword: string) {
  return app.inject({
    method: 'POST',
    url: `${API_PREFIX}/password`,
    headers: bearer(accessToken),
    payload: { current_password: currentPassword, new_password: newPassword }
  })
}

function loginStatus(email: string, password: string): Promise<number> {
  return app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password } }).then((res) => res.statusCode)
}

t.test('POST /register: a refused password is a 400 that says why, and no account is created', async (t) => {
  const who = account()
  for (const [name, password, message] of refusedFor(who)) {
    const res = await register({ email: who.email, password, display_name: who.displayName })
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), { ...errorShape(400), code: 'AUTH_WEAK_PASSWORD', message }, `${name}: code and message`)
    if (password.length >= 10) t.notOk(res.body.includes(password), `${name}: the password is not echoed`) // 'password' is in any message
    t.equal(await countUsers(app, who.email), 0, `${name}: no account`)
  }
  const ok = await register({ email: who.email, password: STRONG, display_name: who.displayName })
  t.equal(ok.statusCode, 201, 'a strong password passes')
  t.equal(await countUsers(app, who.email), 1)
})

t.test('POST /register: the display name is only checked when there is one', async (t) => {
  const who = account()
  const res = await register({ email: who.email, password: 'null display name', display_name: null })
  t.equal(res.statusCode, 201)
})

t.test('POST /register: the length rules stay the schema\'s (400 FST_ERR_VALIDATION)', async (t) => {
  const who = account()
  for (const password of ['short12', 'x'.repeat(257)]) {
    const res = await register({ email: who.email, password })
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'FST_ERR_VALIDATION')
  }
  t.equal(await countUsers(app, who.email), 0)
})

t.test('POST /password: a refused new password is a 400 that says why, and nothing changes', async (t) => {
  const who = account()
  const registered = await register({ email: who.email, password: PASSWORD, display_name: who.displayName })
  t.equal(registered.statusCode, 201)
  const current = registered.json()
  const other = await loginUser(app, who.email)
  const hashBefore = await app.db.selectFrom('users').select('password_hash').where('id', '=', current.user.id).executeTakeFirstOrThrow()

  for (const [name, password, message] of refusedFor(who)) {
    const res = await changePassword(current.access_token, PASSWORD, password)
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), { ...errorShape(400), code: 'AUTH_WEAK_PASSWORD', message }, `${name}: code and message`)
    if (password.length >= 10) t.notOk(res.body.includes(password), `${name}: the password is not echoed`) // 'password' is in any message
    t.equal(await loginStatus(who.email, password), 401, `${name}: the refused password does not log in`)
  }
  t.equal(await loginStatus(who.email, PASSWORD), 200, 'the old password still works')
  const hashAfter = await app.db.selectFrom('users').select('password_hash').where('id', '=', current.user.id).executeTakeFirstOrThrow()
  t.equal(hashAfter.password_hash, hashBefore.password_hash, 'the stored hash is untouched')
  t.equal((await me(app, other.access_token)).statusCode, 200, 'the other session was not ended')

  const ok = await changePassword(current.access_token, PASSWORD, STRONG)
  t.equal(ok.statusCode, 204, 'a strong new password passes')
  t.equal(await loginStatus(who.email, STRONG), 200)
  t.equal(await countSessions(app, current.user.id), 2, 'the caller\'s session and the login above')
})

t.test('POST /password: the policy is checked before the current password', async (t) => {
  const who = account()
  const registered = (await register({ email: who.email, password: PASSWORD })).json()
  const res = await changePassword(registered.access_token, 'not the current password', 'password')
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'AUTH_WEAK_PASSWORD')
  const wrong = await changePassword(registered.access_token, 'not the current password', STRONG)
  t.equal(wrong.statusCode, 401, 'with an acceptable new password, a wrong current one is still a 401')
  t.equal(wrong.json().code, 'AUTH_WRONG_PASSWORD')
})

t.test('POST /login never applies the policy: an old common password still logs in', async (t) => {
  const email = `old-${randomUUID()}@example.com`
  const now = new Date()
  await app.db
    .insertInto('users')
    .values({ id: randomUUID(), email, password_hash: await hashPassword('password'), display_name: null, created_at: now, updated_at: now })
    .execute()
  t.equal(await loginStatus(email, 'password'), 200)
})
