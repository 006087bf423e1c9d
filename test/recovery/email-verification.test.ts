// POST /email/verification and /email/verify, `email_verified` on the user object, and
// REQUIRE_VERIFIED_EMAIL (docs/api.md; docs/recovery.md), through a real SMTP server.
import t from 'tap'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, errorShape, loginUser, me, registerUser, uniqueEmail } from '../helper.js'
import { mailsFor, startSmtpServer, tokenOf } from './smtp.js'

// Every app on a database of its own: on PostgreSQL any instance sends any mail of its database.
const smtp = await startSmtpServer()
t.teardown(() => smtp.stop())
const env = { SMTP_URL: smtp.url, EMAIL_VERIFICATION_URL: 'https://app.example.com/verify?token={token}&lang=en' }
const { app, clock } = await buildTestApp(t, { ownDatabase: true, env })
const INVALID = { ...errorShape(400), code: 'AUTH_INVALID_RECOVERY_TOKEN' }

const askVerification = (accessToken?: string, target = app) =>
  target.inject({ method: 'POST', url: `${API_PREFIX}/email/verification`, headers: accessToken ? bearer(accessToken) : {} })
const verify = (token: string, target = app) => target.inject({ method: 'POST', url: `${API_PREFIX}/email/verify`, payload: { token } })

t.test('a new account is unverified; the mail verifies it, once', async (t) => {
  const pair = await registerUser(app)
  t.equal(pair.user.email_verified, false, 'the token pair says so')
  t.equal((await me(app, pair.access_token)).json().email_verified, false, 'GET /me too')

  const res = await askVerification(pair.access_token)
  t.equal(res.statusCode, 202)
  t.equal(res.body, '')
  const [mail] = await mailsFor(smtp, pair.user.email)
  t.equal(mail.subject, 'Confirm your email address')
  const token = tokenOf(mail)
  t.ok(mail.text.includes(`https://app.example.com/verify?token=${token}&lang=en`), 'the link from EMAIL_VERIFICATION_URL')
  t.ok(mail.html.includes(`https://app.example.com/verify?token=${token}&amp;lang=en`), 'escaped in the HTML part')

  const first = await verify(token)
  t.equal(first.statusCode, 204)
  t.equal(first.body, '')
  t.equal((await me(app, pair.access_token)).json().email_verified, true, 'email_verified becomes true')
  t.equal((await loginUser(app, pair.user.email)).user.email_verified, true, 'in the login token pair too')
  t.match((await verify(token)).json(), INVALID, 'a second use is AUTH_INVALID_RECOVERY_TOKEN')

  const again = await askVerification(pair.access_token)
  t.equal(again.statusCode, 409, 'already verified')
  t.match(again.json(), { ...errorShape(409), code: 'AUTH_EMAIL_ALREADY_VERIFIED' })
  const events = await app.db.selectFrom('auth_events').select('kind').where('user_id', '=', pair.user.id).orderBy('id').execute()
  t.same(events.map((row) => row.kind), ['register', 'email_verification_requested', 'email_verified', 'login'], 'audited')
})

t.test('a newer verification mail supersedes the older one; an expired token is refused', async (t) => {
  const pair = await registerUser(app)
  t.equal((await askVerification(pair.access_token)).statusCode, 202)
  const older = tokenOf((await mailsFor(smtp, pair.user.email, 1))[0])
  t.equal((await askVerification(pair.access_token)).statusCode, 202)
  const newer = tokenOf((await mailsFor(smtp, pair.user.email, 2))[1])
  t.match((await verify(older)).json(), INVALID, 'the older token is refused')
  clock.advance(24 * 3600 + 1) // EMAIL_VERIFICATION_TTL
  t.match((await verify(newer)).json(), INVALID, 'the newer one, once expired, too')
  const { user } = await loginUser(app, pair.user.email)
  t.equal(user.email_verified, false, 'still unverified')
})

t.test('a password-reset token is not a verification token, nor the other way round', async (t) => {
  const pair = await registerUser(app)
  t.equal((await app.inject({ method: 'POST', url: `${API_PREFIX}/password/forgot`, payload: { email: pair.user.email } })).statusCode, 202)
  const resetToken = tokenOf((await mailsFor(smtp, pair.user.email))[0])
  t.match((await verify(resetToken)).json(), INVALID)
  t.equal((await askVerification(pair.access_token)).statusCode, 202)
  const verificationToken = tokenOf((await mailsFor(smtp, pair.user.email, 2))[1])
  const reset = await app.inject({ method: 'POST', url: `${API_PREFIX}/password/reset`, payload: { token: verificationToken, new_password: 'a brand new passphrase 2026' } })
  t.match(reset.json(), INVALID)
})

t.test('without a Bearer token: 401; a body that fails validation: 400', async (t) => {
  const res = await askVerification()
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer')
  const bad = await app.inject({ method: 'POST', url: `${API_PREFIX}/email/verify`, payload: { token: 'x', extra: true } })
  t.equal(bad.json().code, 'FST_ERR_VALIDATION')
})

t.test('REQUIRE_VERIFIED_EMAIL=true: an unverified account cannot log in, after the password check', async (t) => {
  const strict = (await buildTestApp(t, { ownDatabase: true, env: { ...env, REQUIRE_VERIFIED_EMAIL: 'true' } })).app
  const email = uniqueEmail('strict')
  const registered = await registerUser(strict, email)
  const login = (password: string) => strict.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password } })

  const refused = await login(PASSWORD)
  t.equal(refused.statusCode, 403)
  t.same(refused.json(), { statusCode: 403, error: 'Forbidden', message: 'The email address is not verified', code: 'AUTH_EMAIL_NOT_VERIFIED' })
  const wrong = await login('not the password at all')
  t.equal(wrong.statusCode, 401, 'a wrong password still says only 401 AUTH_INVALID_CREDENTIALS')
  t.equal(wrong.json().code, 'AUTH_INVALID_CREDENTIALS')

  t.equal((await askVerification(registered.access_token, strict)).statusCode, 202, 'the session from registration asks for the mail')
  t.equal((await verify(tokenOf((await mailsFor(smtp, email))[0]), strict)).statusCode, 204)
  t.equal((await login(PASSWORD)).statusCode, 200, 'verified: the login works')
})

t.test('REQUIRE_VERIFIED_EMAIL=true: a password reset by mail also verifies the address', async (t) => {
  const strict = (await buildTestApp(t, { ownDatabase: true, env: { ...env, REQUIRE_VERIFIED_EMAIL: 'true' } })).app
  const email = uniqueEmail('strict-reset')
  await registerUser(strict, email)
  await strict.inject({ method: 'POST', url: `${API_PREFIX}/password/forgot`, payload: { email } })
  const token = tokenOf((await mailsFor(smtp, email))[0])
  const newPassword = 'a brand new passphrase 2026'
  t.equal((await strict.inject({ method: 'POST', url: `${API_PREFIX}/password/reset`, payload: { token, new_password: newPassword } })).statusCode, 204)
  t.equal((await strict.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password: newPassword } })).statusCode, 200)
})
