// docs/security.md, "Rate limits and lockout": failed logins are counted per (account, IP), where
// past RATE_LIMIT_ACCOUNT_MAX they answer 429, and per account, where past
// RATE_LIMIT_ACCOUNT_CEILING every attempt is slowed, never refused; a success is never counted.
// So a guesser from many addresses is slowed, and a stranger cannot lock the owner out.
import t from 'tap'
import { API_PREFIX, PASSWORD, buildTestApp, errorShape, registerUser, uniqueEmail } from '../helper.js'
import type { App } from '../../src/app.js'

function login(app: App, email: string, password: string, remoteAddress: string) {
  return app.inject({ method: 'POST', url: `${API_PREFIX}/login`, remoteAddress, payload: { email, password } })
}

async function timed<T>(work: () => Promise<T>): Promise<{ result: T, ms: number }> {
  const started = performance.now()
  const result = await work()
  return { result, ms: performance.now() - started }
}

t.test('with the default limits, wrong passwords from strangers never lock the owner out', async (t) => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT: 'on' } })
  const { user } = await registerUser(app)
  for (let round = 1; round <= 2; round++) {
    // The scenario: 10 wrong passwords for the email, from one address each.
    for (let i = 0; i < 10; i++) {
      t.equal((await login(app, user.email, 'wrong password!', `203.0.113.${round * 10 + i}`)).statusCode, 401)
    }
    const owner = await login(app, user.email, PASSWORD, `198.51.100.${round}`)
    t.equal(owner.statusCode, 200, `round ${round}: the owner logs in from another address`)
  }
})

t.test('per (account, IP): past the limit that address is refused with Retry-After; others are not', async (t) => {
  const { app, clock } = await buildTestApp(t, {
    env: { RATE_LIMIT: 'on', RATE_LIMIT_ACCOUNT_MAX: '3', RATE_LIMIT_ACCOUNT_CEILING: '100', RATE_LIMIT_WINDOW: '1m' }
  })
  const { user } = await registerUser(app)
  for (let i = 0; i < 3; i++) t.equal((await login(app, user.email, 'wrong password!', '10.0.0.1')).statusCode, 401)

  const limited = await login(app, user.email.toUpperCase(), PASSWORD, '10.0.0.1') // emails are case-insensitive
  t.equal(limited.statusCode, 429, 'that address is refused, even with the right password')
  t.match(limited.json(), errorShape(429))
  t.match(limited.json(), { code: 'AUTH_RATE_LIMITED' })
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60, `Retry-After: ${limited.headers['retry-after']}`)

  t.equal((await login(app, user.email, PASSWORD, '10.0.0.2')).statusCode, 200, 'the owner from another address gets in')
  t.equal((await login(app, uniqueEmail(), 'wrong password!', '10.0.0.1')).statusCode, 401, 'another account from that address is not limited')

  clock.advance(61) // the window (on the injected clock) is over
  t.equal((await login(app, user.email, PASSWORD, '10.0.0.1')).statusCode, 200, 'a new window lets that address in again')
})

t.test('a successful login is never counted', async (t) => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT: 'on', RATE_LIMIT_ACCOUNT_MAX: '2', RATE_LIMIT_ACCOUNT_CEILING: '2' } })
  const { user } = await registerUser(app)
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await login(app, user.email, PASSWORD, '10.0.0.3')).statusCode)
  t.same(statuses, [200, 200, 200, 200, 200], 'five logins, limit 2: successes count for nothing')
  // Against a login of an account nobody touched, just before: a loaded machine slows both alike.
  const other = await registerUser(app)
  const { ms: unslowed } = await timed(() => login(app, other.user.email, PASSWORD, '10.0.0.4'))
  const { ms } = await timed(() => login(app, user.email, PASSWORD, '10.0.0.4'))
  t.ok(ms < unslowed + 250, `nor do they slow the account (${ms.toFixed(0)} ms; an untouched account's login ${unslowed.toFixed(0)} ms; the first slowdown is 250 ms)`)
  t.equal((await login(app, user.email, 'wrong password!', '10.0.0.3')).statusCode, 401)
  t.equal((await login(app, user.email, 'wrong password!', '10.0.0.3')).statusCode, 401)
  t.equal((await login(app, user.email, PASSWORD, '10.0.0.3')).statusCode, 429, 'failures do count')
})

t.test('past the per-account ceiling a guesser from many addresses is slowed, more and more, and the owner still gets in', async (t) => {
  const { app } = await buildTestApp(t, {
    env: { RATE_LIMIT: 'on', RATE_LIMIT_ACCOUNT_CEILING: '3', RATE_LIMIT_SLOWDOWN_MAX: '1' }
  })
  const { user } = await registerUser(app)
  for (let i = 0; i < 3; i++) t.equal((await login(app, user.email, 'wrong password!', `203.0.113.${i}`)).statusCode, 401)

  // From here on every attempt waits 250 ms, then 500 ms, then 1 s (the cap), before it is checked.
  for (const [i, atLeast] of [[3, 250], [4, 500], [5, 1000], [6, 1000]]) {
    const { result, ms } = await timed(() => login(app, user.email, 'wrong password!', `203.0.113.${i}`))
    t.equal(result.statusCode, 401, 'slowed, not refused')
    t.ok(ms >= atLeast - 5, `a guess from a new address took ${ms.toFixed(0)} ms (at least ${atLeast})`)
  }
  const { result: owner, ms } = await timed(() => login(app, user.email, PASSWORD, '198.51.100.7'))
  t.equal(owner.statusCode, 200, 'the owner from a new address gets in')
  t.ok(ms >= 995, `slowed at most: ${ms.toFixed(0)} ms`)
})

t.test('an unknown email is slowed exactly like a registered one (the slowdown reveals nothing)', async (t) => {
  const { app } = await buildTestApp(t, { env: { RATE_LIMIT: 'on', RATE_LIMIT_ACCOUNT_CEILING: '2', RATE_LIMIT_SLOWDOWN_MAX: '1' } })
  const { user } = await registerUser(app)
  const unknown = uniqueEmail('nobody')
  const delays: Record<string, number[]> = {}
  for (const email of [user.email, unknown]) {
    delays[email] = []
    for (let i = 0; i < 4; i++) {
      const { result, ms } = await timed(() => login(app, email, 'wrong password!', `192.0.2.${i}`))
      t.equal(result.statusCode, 401)
      delays[email].push(ms)
    }
  }
  for (const email of [user.email, unknown]) {
    t.ok(delays[email][2] >= 245 && delays[email][3] >= 495, `${email === unknown ? 'unknown' : 'known'}: ${delays[email].map((ms) => ms.toFixed(0)).join(', ')} ms`)
  }
})
