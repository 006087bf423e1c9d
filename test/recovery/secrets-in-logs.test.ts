// Property (fast-check): whatever sequence of recovery requests is made, with whatever passwords
// and tokens, no recovery token and no password ever reaches the log or the audit trail (nor the
// Shared Signals events, nor the database in the clear). SMTP mode: without SMTP_URL, outside
// production, the mail itself is written to the log on purpose (docs/security.md, "Secrets in
// logs"), which is out of this property's scope. FUZZ_SCALE, FUZZ_SEED: test/fuzz/support.ts.
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import fc from 'fast-check'
import t from 'tap'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, registerUser } from '../helper.js'
import { SECRET_MARK, markedSecret, params } from '../fuzz/support.js'
import { mailsFor, startSmtpServer, tokenOf } from './smtp.js'

const smtp = await startSmtpServer()
t.teardown(() => smtp.stop())
let logText = ''
const logStream = new Writable({
  write(chunk: Buffer, _encoding, done) {
    logText += chunk.toString()
    done()
  }
})
const { app } = await buildTestApp(t, { ownDatabase: true, logStream, env: { SMTP_URL: smtp.url, LOG_LEVEL: 'trace', REQUIRE_VERIFIED_EMAIL: 'true' } })
const post = (path: string, payload?: Record<string, unknown>, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `${API_PREFIX}${path}`, headers, ...(payload ? { payload } : {}) })

type Action =
  | { op: 'forgot', unknown: boolean }
  | { op: 'reset', token: 'latest' | 'forged', password: string }
  | { op: 'verification' }
  | { op: 'verify', token: 'latest' | 'forged' }
  | { op: 'login', password: string }

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ op: fc.constant('forgot' as const), unknown: fc.boolean() }),
  fc.record({ op: fc.constant('reset' as const), token: fc.constantFrom('latest' as const, 'forged' as const), password: markedSecret }),
  fc.record({ op: fc.constant('verification' as const) }),
  fc.record({ op: fc.constant('verify' as const), token: fc.constantFrom('latest' as const, 'forged' as const) }),
  fc.record({ op: fc.constant('login' as const), password: fc.oneof(markedSecret, fc.constant(PASSWORD)) })
)

/** Every token any mail carried, and every forged one sent. */
const tokens = new Set<string>()
const seen = { mails: 0, resets: 0 }

async function everythingStored(): Promise<string> {
  const tables = ['auth_events', 'security_events', 'recovery_tokens', 'mail_outbox'] as const
  const rows = await Promise.all(tables.map((table) => app.db.selectFrom(table).selectAll().execute()))
  return JSON.stringify(rows)
}

t.test('no token and no password reaches the log or the audit trail', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 6 }), async (actions) => {
      const pair = await registerUser(app)
      const email = pair.user.email
      let access = pair.access_token
      let mails = 0
      let latest: string | undefined
      for (const step of actions) {
        if (step.op === 'forgot') {
          const res = await post('/password/forgot', { email: step.unknown ? `nobody-${randomBytes(6).toString('hex')}@example.com` : email })
          if (res.statusCode !== 202) throw new Error(`forgot: ${res.statusCode}`)
          if (!step.unknown) latest = tokenOf((await mailsFor(smtp, email, ++mails))[mails - 1])
        } else if (step.op === 'verification') {
          const res = await post('/email/verification', undefined, bearer(access))
          if (res.statusCode === 202) latest = tokenOf((await mailsFor(smtp, email, ++mails))[mails - 1])
        } else if (step.op === 'reset' || step.op === 'verify') {
          const token = step.token === 'latest' && latest ? latest : `${randomBytes(4).toString('hex')}${SECRET_MARK}`
          tokens.add(token)
          const res = step.op === 'reset'
            ? await post('/password/reset', { token, new_password: step.password })
            : await post('/email/verify', { token })
          if (res.statusCode >= 500) throw new Error(`${step.op}: ${res.statusCode} ${res.body}`)
          if (res.statusCode === 204 && step.op === 'reset') seen.resets++
        } else {
          const res = await post('/login', { email, password: step.password })
          if (res.statusCode === 200) access = res.json().access_token
        }
      }
      if (latest) tokens.add(latest)
      seen.mails += mails
      await app.recovery.outbox.runOnce()
      const stored = await everythingStored()
      for (const token of tokens) {
        if (logText.includes(token)) throw new Error(`a token reached the log: ${token}`)
        if (stored.includes(token)) throw new Error(`a token is in the database in the clear: ${token}`)
      }
      if (logText.includes(SECRET_MARK)) throw new Error('a password or a forged token reached the log')
      if (stored.includes(SECRET_MARK)) throw new Error('a password or a forged token reached the audit trail or the database')
    }),
    params(25)
  )
  t.ok(seen.mails > 0, `mails were sent and their tokens used (${seen.mails} mails, ${seen.resets} resets, ${tokens.size} tokens)`)
  t.ok(logText.includes('"msg":"mail sent"'), 'the log does speak of the mails')
  t.ok(logText.includes('auth event: password_reset_requested'), 'and of the recovery events')
})
