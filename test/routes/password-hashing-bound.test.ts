// Bounded password hashing (docs/decisions.md, "Bounded password hashing"): at most
// PASSWORD_HASH_CONCURRENCY argon2id computations at once and PASSWORD_HASH_QUEUE waiting; a
// login, registration or password change past that is answered 503 with Retry-After (held for a
// second first, so that refusals cannot be asked for thousands of times a second), and changes
// nothing. Through app.inject() on a real database.
import t from 'tap'
import { API_PREFIX, PASSWORD, bearer, buildTestApp, captureLog, registerUser, uniqueEmail } from '../helper.js'
import { PasswordHasher } from '../../src/services/passwords.js'
import { PasswordHashingBusyError } from '../../src/services/errors.js'

t.test('PasswordHasher: a bound, a queue in order, the slot handed over, released on failure', async (t) => {
  const hasher = new PasswordHasher({ concurrency: 1, queue: 2, refusalDelayMs: 0 })
  const order: string[] = []
  const bounded = (hasher as unknown as { bounded<T>(work: () => Promise<T>): Promise<T> }).bounded.bind(hasher)
  let release!: () => void
  const first = bounded(() => new Promise<void>((resolve) => (release = resolve)).then(() => order.push('first')))
  const second = bounded(async () => order.push('second'))
  const third = bounded(async () => {
    order.push('third')
    throw new Error('argon2 failed')
  })
  t.same(hasher.load, { active: 1, waiting: 2 })
  t.equal(hasher.full, true, 'full: the routes refuse before anything else')
  await t.rejects(hasher.refuseWhenFull(), PasswordHashingBusyError)
  await t.rejects(bounded(async () => order.push('refused')), PasswordHashingBusyError, 'the queue is full: refused')
  release()
  await first
  await second
  await t.rejects(third, /argon2 failed/)
  t.same(order, ['first', 'second', 'third'], 'in order; the refused one never ran')
  t.same(hasher.load, { active: 0, waiting: 0 }, 'every slot back, the failed one too')
  t.equal(hasher.full, false)
  t.equal(await hasher.verify(await hasher.hash(PASSWORD), PASSWORD), true, 'still works')
})

t.test('over the bound: 503 with Retry-After after a second, nothing changed; then back to normal', async (t) => {
  const { app } = await buildTestApp(t, { env: { PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '1' } })
  const emails = Array.from({ length: 8 }, () => uniqueEmail('bound'))
  const started = Date.now()
  const answers = await Promise.all(emails.map((email) => app.inject({
    method: 'POST', url: `${API_PREFIX}/register`, payload: { email, password: PASSWORD }
  }).then((res) => Object.assign(res, { tookMs: Date.now() - started }))))
  const created = answers.filter((res) => res.statusCode === 201)
  const refused = answers.filter((res) => res.statusCode === 503)
  t.equal(created.length + refused.length, answers.length, `only 201 or 503: ${answers.map((res) => res.statusCode)}`)
  t.ok(created.length >= 2, `the running one and the waiting one went through (${created.length})`)
  t.ok(refused.length >= 1, `the rest refused (${refused.length})`)
  for (const res of refused) {
    // Held for the refusal delay (1 s, the Retry-After) rather than answered at once: a flood's
    // connections cannot spin on 503s (services/passwords.ts, refusalDelayMs).
    t.ok(res.tookMs >= 900, `a refusal is held about a second (${res.tookMs} ms)`)
    t.equal(res.headers['retry-after'], '1')
    t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', message: 'Service temporarily unavailable' }, 'no stack, no code')
  }
  const users = await app.db.selectFrom('users').select('email').where('email', 'in', emails).execute()
  t.equal(users.length, created.length, 'a refused registration created no user')

  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, new RegExp(`auth_password_hashing_busy_total ${refused.length}\\b`), 'counted')

  const pair = await registerUser(app)
  const logins = await Promise.all(Array.from({ length: 8 }, () => app.inject({
    method: 'POST', url: `${API_PREFIX}/login`, payload: { email: pair.user.email, password: PASSWORD }
  })))
  t.same([...new Set(logins.map((res) => res.statusCode))].sort(), [200, 503], 'logins too')
  const unknown = await Promise.all(Array.from({ length: 8 }, () => app.inject({
    method: 'POST', url: `${API_PREFIX}/login`, payload: { email: uniqueEmail('nobody'), password: PASSWORD }
  })))
  t.same([...new Set(unknown.map((res) => res.statusCode))].sort(), [401, 503], 'an unknown email is bounded alike (no enumeration by load)')

  const changed = await app.inject({
    method: 'POST',
    url: `${API_PREFIX}/password`,
    headers: bearer(pair.access_token),
    payload: { current_password: PASSWORD, new_password: 'a different horse battery staple' }
  })
  t.equal(changed.statusCode, 204, 'one at a time: no 503')
})

t.test('refusals are logged at most once a second per app, with their count', async (t) => {
  const flood = async () => {
    const log = captureLog()
    const { app } = await buildTestApp(t, { env: { PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '0', LOG_LEVEL: 'warn' }, logStream: log.stream })
    const answers = await Promise.all(Array.from({ length: 6 }, () => app.inject({
      method: 'POST', url: `${API_PREFIX}/register`, payload: { email: uniqueEmail('shed'), password: PASSWORD }
    })))
    const refused = answers.filter((res) => res.statusCode === 503).length
    return { refused, lines: log.lines.filter((line) => line.code === 'AUTH_BUSY') }
  }
  // Two apps in one process, flooded at the same moment: neither one's line silences the other's.
  const [first, second] = await Promise.all([flood(), flood()])
  for (const [name, { refused, lines }] of [['first app', first], ['second app', second]] as const) {
    t.ok(refused >= 4, `${name}: ${refused} refused`)
    t.equal(lines.length, 1, `${name}: one warn line for refusals within a second`)
    t.match(lines[0], { level: 40, refused: 1 }, `${name}: the first refusal logged at once; the others counted for the next line`)
  }
})
