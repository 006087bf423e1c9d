// The outbox's guarantees (docs/recovery.md, "Mail delivery"), with a real SMTP server: a mail
// written before a crash is sent by the next instance; an SMTP server that is down for a while
// delays mails and never loses one (retries with back-off, logged and counted); a sender that
// dies mid-send leaves its claim to expire and the mail is sent once; two senders on one
// database never send a mail twice; a mail that keeps failing is given up, visibly.
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { pgliteDirFor } from '../../src/db/database.js'
import { MailOutbox, retryDelaySeconds } from '../../src/mail/outbox.js'
import { smtpTransport } from '../../src/mail/transport.js'
import { claimDueMails } from '../../src/repositories/mail-outbox.js'
import { requestEmailVerification, resolveNextRequest, type RecoveryContext } from '../../src/services/recovery.js'
import { Counter, Registry } from 'prom-client'
import { API_PREFIX, bearer, buildTestApp, captureLog, decodeJwt, registerUser, type TestContext } from '../helper.js'
import { mailsFor, startSmtpServer, tokenOf, type TestSmtpServer } from './smtp.js'
import type { App } from '../../src/app.js'

const smtp = await startSmtpServer()
t.teardown(() => smtp.stop())

const forgot = (app: App, email: string) => app.inject({ method: 'POST', url: `${API_PREFIX}/password/forgot`, payload: { email } })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const mailsTo = (server: TestSmtpServer, email: string) => server.mails.filter((mail) => mail.to.includes(email))

async function metric(app: App, name: string): Promise<number> {
  const values = (await app.metricsRegistry.getSingleMetric(name)?.get())?.values ?? []
  return values.reduce((sum, value) => sum + value.value, 0)
}

/** A pending verification mail for `accessToken`'s user, without waking any sender. */
async function pendingMail(app: App, accessToken: string): Promise<void> {
  const { sub, sid } = decodeJwt(accessToken).payload
  const quiet: RecoveryContext = { ...app.recovery, wake: () => {} }
  await requestEmailVerification(app.authContext, quiet, { userId: sub, sessionId: sid }, {})
}

/** Another sender on the app's database, as a second instance has (its own SMTP connection). */
function secondSender(app: App, url: string, options: { maxAttempts?: number } = {}): MailOutbox {
  const registers = [new Registry()]
  const counter = (name: string) => new Counter({ name, help: name, labelNames: ['kind'], registers })
  const settings = app.recovery.settings
  const context: RecoveryContext = { ...app.recovery, wake: () => {} }
  return new MailOutbox({
    db: app.db,
    transport: smtpTransport(url, settings.mailFrom),
    sealer: app.recovery.sealer,
    now: () => app.authContext.now(),
    log: app.log,
    metrics: { sent: counter('sent'), attemptsFailed: counter('failed'), givenUp: counter('given_up') },
    links: {
      password_reset: { template: settings.passwordResetUrl, ttlSeconds: settings.passwordResetTtl },
      email_verification: { template: settings.emailVerificationUrl, ttlSeconds: settings.emailVerificationTtl }
    },
    retryBaseSeconds: settings.retryBase,
    maxAttempts: options.maxAttempts ?? settings.maxAttempts,
    messageIdDomain: 'example.com',
    resolveNextRequest: () => resolveNextRequest(app.authContext, context)
  })
}

t.test('back-off doubles from MAIL_RETRY_BASE, at most 15 minutes', async (t) => {
  t.same([1, 2, 3, 4, 10, 30].map((n) => retryDelaySeconds(5, n)), [5, 10, 20, 40, 900, 900])
})

t.test('a crash between the commit and the send loses nothing: the next instance sends it, once', async (t) => {
  const first: TestContext = await buildTestApp(t, { ownDatabase: true, env: { SMTP_URL: smtp.url } })
  await first.app.recovery.outbox.stop() // this instance will never send: it "crashes" after committing
  const pair = await registerUser(first.app)
  const email = pair.user.email
  t.equal((await forgot(first.app, email)).statusCode, 202)
  t.equal((await first.app.inject({ method: 'POST', url: `${API_PREFIX}/email/verification`, headers: bearer(pair.access_token) })).statusCode, 202)
  await first.app.close()
  t.equal(mailsTo(smtp, email).length, 0, 'nothing sent before the crash')

  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: first.dataDir,
    LOG_LEVEL: 'silent',
    RATE_LIMIT: 'off',
    SESSION_CLEANUP_INTERVAL: '0',
    JWT_PRIVATE_KEY: first.privateKeyPem,
    SMTP_URL: smtp.url,
    ...(first.databaseUrl ? { DATABASE_URL: first.databaseUrl } : {})
  })
  const second = await buildApp(config, { pgliteDir: pgliteDirFor(first.dataDir), migrate: true })
  t.teardown(() => second.close())
  await second.ready()
  const mails = await mailsFor(smtp, email, 2)
  await second.recovery.outbox.runOnce()
  await sleep(200)
  t.equal(mailsTo(smtp, email).length, 2, 'both mails arrive, each once')
  t.same(mails.map((mail) => mail.subject).sort(), ['Confirm your email address', 'Reset your password'])
  const reset = await second.inject({
    method: 'POST', url: `${API_PREFIX}/password/reset`,
    payload: { token: tokenOf(mails.find((mail) => mail.subject === 'Reset your password')!), new_password: 'a brand new passphrase 2026' }
  })
  t.equal(reset.statusCode, 204, 'and the token written before the crash works')
})

t.test('the SMTP server down for a while: the mail is delayed, retried with back-off, never lost, sent once', async (t) => {
  const logs = captureLog()
  const { app } = await buildTestApp(t, {
    ownDatabase: true, // every instance on a database sends its mails: another test file's would take these
    env: { SMTP_URL: smtp.url, MAIL_RETRY_BASE: '1s', MAIL_POLL_INTERVAL: '1s', LOG_LEVEL: 'warn' },
    logStream: logs.stream
  })
  const pair = await registerUser(app)
  const email = pair.user.email
  await smtp.stop()
  try {
    t.equal((await forgot(app, email)).statusCode, 202, 'the request is answered as usual')
    const warnings = () => logs.lines.filter((line) => line.msg === 'mail not sent; will retry')
    const deadline = Date.now() + 15_000
    while (warnings().length < 2 && Date.now() < deadline) await sleep(50)
    const row = await app.db.selectFrom('mail_outbox').selectAll().where('email', '=', email).executeTakeFirst()
    t.ok(row && row.attempts >= 2, `retried while the server was down (${row?.attempts} attempts)`)
    t.equal(row?.state, 'pending', 'still waiting, not given up')
    t.match(row?.last_error, /ECONNREFUSED/, 'the reason is kept')
    t.ok(await metric(app, 'auth_mail_send_failures_total') >= 2, 'failed attempts are counted')
    t.ok(warnings().length >= 2, 'and logged')
    t.match(warnings()[0], { level: 40, kind: 'password_reset', attempts: 1, retry_in_seconds: 1 })
    t.match(warnings()[1], { attempts: 2, retry_in_seconds: 2 })
  } finally {
    await smtp.start()
  }
  const [mail] = await mailsFor(smtp, email, 1, 20_000)
  t.equal(mail.subject, 'Reset your password', 'the mail arrives once the server is back')
  await sleep(2_500) // more runs of the sender
  t.equal(mailsTo(smtp, email).length, 1, 'exactly once')
  const row = await app.db.selectFrom('mail_outbox').selectAll().where('email', '=', email).executeTakeFirstOrThrow()
  t.match(row, { state: 'sent', sealed_token: null })
  t.equal(await metric(app, 'auth_mail_sent_total'), 1)
})

t.test('one sender per mail', async (t) => {
  // No timer in the way: the sender runs when the test says.
  const { app, clock } = await buildTestApp(t, { ownDatabase: true, env: { SMTP_URL: smtp.url, MAIL_POLL_INTERVAL: '1h' } })

  t.test('a sender that dies after claiming: the claim expires, another sends it, once', async (t) => {
    const pair = await registerUser(app)
    await pendingMail(app, pair.access_token)
    const now = app.authContext.now()
    const claimed = await claimDueMails(app.db, now, new Date(now.getTime() + 120_000), 10)
    t.equal(claimed.length, 1, 'a sender claims it, then dies')
    t.same((await app.recovery.outbox.runOnce()).sent, 0, 'while the claim holds nobody sends it')
    clock.advance(121)
    t.same((await app.recovery.outbox.runOnce()).sent, 1, 'then the next run does')
    t.same((await app.recovery.outbox.runOnce()).sent, 0, 'and never again')
    t.equal((await mailsFor(smtp, pair.user.email)).length, 1)
  })

  t.test('two senders on one database: every mail sent exactly once', async (t) => {
    const users = await Promise.all(Array.from({ length: 8 }, () => registerUser(app)))
    for (const pair of users) await pendingMail(app, pair.access_token)
    const other = secondSender(app, smtp.url)
    t.teardown(() => other.stop())
    const runs = await Promise.all([app.recovery.outbox.runOnce(), other.runOnce()])
    t.equal(runs[0].sent + runs[1].sent, 8, `eight sends in all (${runs[0].sent} and ${runs[1].sent})`)
    const more = await Promise.all([app.recovery.outbox.runOnce(), other.runOnce()])
    t.equal(more[0].sent + more[1].sent, 0, 'and none after')
    await sleep(200)
    for (const pair of users) t.equal(mailsTo(smtp, pair.user.email).length, 1, `${pair.user.email}: one mail`)
  })

  t.test('a mail that keeps failing is given up after MAIL_MAX_ATTEMPTS, logged and counted', async (t) => {
    const dead = await startSmtpServer()
    await dead.stop()
    const pair = await registerUser(app)
    await pendingMail(app, pair.access_token)
    const failing = secondSender(app, dead.url, { maxAttempts: 2 })
    await failing.runOnce()
    clock.advance(6) // past the first back-off (MAIL_RETRY_BASE 5s)
    await failing.runOnce()
    const row = await app.db.selectFrom('mail_outbox').selectAll().where('email', '=', pair.user.email).executeTakeFirstOrThrow()
    t.match(row, { state: 'failed', attempts: 2, sealed_token: null, last_error: /ECONNREFUSED/ })
    clock.advance(3600)
    t.same((await app.recovery.outbox.runOnce()).sent, 0, 'a given-up mail is never retried')
    await failing.stop()
  })
})
