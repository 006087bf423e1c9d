// POST /password/forgot and /password/reset (docs/api.md; docs/recovery.md) through a real SMTP
// server on a loopback port: the mail arrives with the right link, its token works once, a used,
// expired, superseded or unknown token is AUTH_INVALID_RECOVERY_TOKEN, and a reset ends every
// session of the account at once (access tokens, refresh tokens, one session-revoked SET each).
import t from 'tap'
import { API_PREFIX, PASSWORD, countSessions, decodeJwt, errorShape, loginUser, me, refresh, registerUser, uniqueEmail, type TokenPairBody } from '../helper.js'
import { CREDENTIAL_CHANGE, SESSION_REVOKED, createStream, drain, eventOf, ssfApp } from '../ssf/helper.js'
import { mailsFor, startSmtpServer, tokenOf } from './smtp.js'

const smtp = await startSmtpServer()
t.teardown(() => smtp.stop())
const ctx = await ssfApp(t, {
  env: {
    SMTP_URL: smtp.url,
    MAIL_FROM: 'Example Accounts <accounts@example.com>',
    PASSWORD_RESET_URL: 'https://app.example.com/reset-password#token={token}',
    REFRESH_TOKEN_TTL: '1d',
    SSF_STREAM_IDLE_TTL: '30d'
  }
})
const { app, clock, receiver } = ctx
const stream = await createStream(app, ctx.token)
await drain(app, ctx.token, stream.stream_id) // nothing from before the tests
const NEW_PASSWORD = 'a brand new passphrase 2026'
const INVALID = { ...errorShape(400), error: 'Bad Request', code: 'AUTH_INVALID_RECOVERY_TOKEN' }

const forgot = (email: string) => app.inject({ method: 'POST', url: `${API_PREFIX}/password/forgot`, payload: { email } })
const reset = (token: string, password = NEW_PASSWORD) =>
  app.inject({ method: 'POST', url: `${API_PREFIX}/password/reset`, payload: { token, new_password: password } })
const loginStatus = (email: string, password: string) =>
  app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password } }).then((res) => res.statusCode)

/** Asks for a reset of `email` and returns the token of the `nth` mail it receives. */
async function resetToken(email: string, nth = 1): Promise<string> {
  const res = await forgot(email)
  if (res.statusCode !== 202) throw new Error(`forgot answered ${res.statusCode} ${res.body}`)
  return tokenOf((await mailsFor(smtp, email, nth))[nth - 1])
}

t.test('the mail arrives through SMTP with the link, in text and HTML; its token works once', async (t) => {
  const pair = await registerUser(app)
  const email = pair.user.email
  const res = await forgot(email.toUpperCase())
  t.equal(res.statusCode, 202)
  t.equal(res.body, '', 'an empty body')
  const [mail] = await mailsFor(smtp, email)
  t.equal(mail.from, 'accounts@example.com', 'from MAIL_FROM')
  t.match(mail.raw, /^From: Example Accounts <accounts@example\.com>/m)
  t.equal(mail.subject, 'Reset your password')
  const token = tokenOf(mail)
  t.match(token, /^[A-Za-z0-9_-]{43}$/, '256 random bits, URL-safe base64')
  t.ok(mail.text.includes(`https://app.example.com/reset-password#token=${token}`), 'the text part has the link from PASSWORD_RESET_URL')
  t.ok(mail.html.includes(`href="https://app.example.com/reset-password#token=${token}"`), 'the HTML part links to it')
  t.match(mail.messageId, /^<password_reset\.\d+\.[0-9a-f]{16}@example\.com>$/)

  const stored = await app.db.selectFrom('recovery_tokens').selectAll().where('user_id', '=', pair.user.id).execute()
  t.equal(stored.length, 1)
  t.not(stored[0].token_hash, token, 'only a hash is stored')
  t.notOk(JSON.stringify(stored).includes(token), 'the token is nowhere in its row')
  await app.recovery.outbox.runOnce() // the run that sent it has recorded the outcome
  const outbox = await app.db.selectFrom('mail_outbox').selectAll().where('token_id', '=', stored[0].id).execute()
  t.match(outbox, [{ state: 'sent', sealed_token: null, attempts: 1 }], 'sent once; the sealed copy erased')

  const first = await reset(token)
  t.equal(first.statusCode, 204)
  t.equal(first.body, '')
  t.equal(await loginStatus(email, NEW_PASSWORD), 200, 'the new password works')
  t.equal(await loginStatus(email, PASSWORD), 401, 'the old one does not')
  const profile = (await loginUser(app, email, NEW_PASSWORD)).user
  t.equal(profile.email_verified, true, 'the mail reached the address: it counts as verified')

  const second = await reset(token, 'yet another passphrase 2027')
  t.equal(second.statusCode, 400, 'a second use is refused')
  t.match(second.json(), INVALID)
  t.equal(await loginStatus(email, NEW_PASSWORD), 200, 'and changed nothing')
})

t.test('a reset ends every session of the account: access and refresh tokens 401 at once, a session-revoked SET each', async (t) => {
  const first = await registerUser(app)
  const email = first.user.email
  const sessions: TokenPairBody[] = [first, await loginUser(app, email), await loginUser(app, email)]
  const bystander = await registerUser(app)
  await drain(app, ctx.token, stream.stream_id)
  const token = await resetToken(email)
  t.equal((await reset(token)).statusCode, 204)

  t.equal(await countSessions(app, first.user.id), 0, 'no session is left')
  for (const [i, pair] of sessions.entries()) {
    const profile = await me(app, pair.access_token)
    t.equal(profile.statusCode, 401, `session ${i}: its access token is refused at once`)
    t.equal(profile.headers['www-authenticate'], 'Bearer error="invalid_token"')
    t.equal((await refresh(app, pair.refresh_token)).statusCode, 401, `session ${i}: its refresh token too`)
  }
  t.equal((await me(app, bystander.access_token)).statusCode, 200, "another user's session lives on")

  const events = (await drain(app, ctx.token, stream.stream_id)).map((set) => eventOf(set))
  const revoked = events.filter((event) => event.type === SESSION_REVOKED)
  t.same(
    revoked.map((event) => event.payload.sub_id.session.id).sort(),
    sessions.map((pair) => decodeJwt(pair.access_token).payload.sid).sort(),
    'one session-revoked SET per session'
  )
  for (const event of revoked) {
    t.equal(event.body.initiating_entity, 'user')
    t.equal(event.body.reason_admin.en, 'password reset')
  }
  const changes = events.filter((event) => event.type === CREDENTIAL_CHANGE)
  t.equal(changes.length, 1, 'and one credential-change')
  t.match(changes[0].body, { credential_type: 'password', change_type: 'update' })

  const audit = await app.db.selectFrom('auth_events').select(['kind', 'detail', 'session_id']).where('user_id', '=', first.user.id).orderBy('id').execute()
  const kinds = audit.map((row) => row.kind)
  t.ok(kinds.includes('password_reset_requested'), 'the request is audited')
  t.equal(kinds.filter((kind) => kind === 'password_reset').length, 1, 'the reset is audited')
  const logouts = audit.filter((row) => row.kind === 'logout')
  t.equal(logouts.length, 3, 'each ended session too')
  t.ok(logouts.every((row) => (row.detail as { scope?: string }).scope === 'password_reset'))
  t.equal(receiver.clientId.length > 0, true)
})

t.test('a newer request supersedes the older token', async (t) => {
  const pair = await registerUser(app)
  const older = await resetToken(pair.user.email, 1)
  const newer = await resetToken(pair.user.email, 2)
  t.not(older, newer)
  t.match((await reset(older)).json(), INVALID, 'the older token is refused')
  t.equal((await reset(newer)).statusCode, 204, 'the newer one works')
})

t.test('an unknown address: the same 202 and empty body, and no mail', async (t) => {
  const email = uniqueEmail('nobody')
  const res = await forgot(email)
  t.equal(res.statusCode, 202)
  t.equal(res.body, '')
  await app.recovery.outbox.runOnce()
  t.equal(smtp.mails.filter((mail) => mail.to.includes(email)).length, 0, 'no mail')
  const left = await app.db.selectFrom('mail_outbox').select('id').where('email', '=', email).execute()
  t.same(left, [], 'nothing kept about the address')
})

t.test('a weak new password: 400 AUTH_WEAK_PASSWORD, and the token still works', async (t) => {
  const pair = await registerUser(app)
  const token = await resetToken(pair.user.email)
  const weak = await reset(token, 'password123')
  t.equal(weak.statusCode, 400)
  t.match(weak.json(), { code: 'AUTH_WEAK_PASSWORD' })
  const email = await reset(token, pair.user.email)
  t.match(email.json(), { code: 'AUTH_WEAK_PASSWORD' }, 'the email itself is refused, as at registration')
  t.equal(await countSessions(app, pair.user.id), 1, 'no session ended')
  t.equal((await reset(token)).statusCode, 204, 'the same link works with a good password')
})

t.test('unknown and malformed tokens, and bodies that fail validation', async (t) => {
  for (const token of ['x', 'A'.repeat(43), 'not a token at all', 'é'.repeat(20)]) {
    t.match((await reset(token)).json(), INVALID, `token ${JSON.stringify(token.slice(0, 12))}`)
  }
  t.equal((await reset('x'.repeat(513))).statusCode, 400)
  for (const payload of [{}, { email: 'not-an-email' }, { email: 'a@example.com', extra: 1 }, { email: 42 }]) {
    const res = await app.inject({ method: 'POST', url: `${API_PREFIX}/password/forgot`, payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(res.json().code, 'FST_ERR_VALIDATION')
  }
  const missing = await app.inject({ method: 'POST', url: `${API_PREFIX}/password/reset`, payload: { token: 'x' } })
  t.equal(missing.json().code, 'FST_ERR_VALIDATION')
})

t.test('an expired token is refused (PASSWORD_RESET_TTL, 30 minutes by default)', async (t) => {
  const pair = await registerUser(app)
  const token = await resetToken(pair.user.email)
  clock.advance(30 * 60 + 1)
  t.match((await reset(token)).json(), INVALID)
  t.equal(await loginStatus(pair.user.email, PASSWORD), 200, 'the password is unchanged')
})
