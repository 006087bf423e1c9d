// POST /admin/users/:id/disable racing refreshes and logins of the same user (docs/api.md, "Admin
// endpoints": "every session ends; login and refresh refused until enabled"). The disable holds
// the user row `for update` while it deletes the sessions; a login's INSERT_SESSION takes the row
// `for key share` and only for a user not disabled, and a rotation requires `not users.disabled`
// (repositories/sessions.ts). So, whatever the interleaving:
// - no refresh or login that started after the disable answered succeeds;
// - when the disable has answered the user has no session, and none appears later;
// - every token pair any request returned (also those that raced and won) is dead: its access
//   token 401 at /me, its refresh token 401 at /refresh.
//
// Both engines. PGlite has one connection (transactions serialised), but in-flight injects still
// interleave at every await: logins are checking passwords while the disable commits. On
// PostgreSQL there is real concurrency: two app instances on the same database (same signing key,
// same client), requests spread over both, each on its own pool connections.
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import type { App } from '../../src/app.js'
import { holdUser, setUserDisabled } from '../../src/repositories/users.js'
import {
  API_PREFIX,
  PASSWORD,
  adminQuery,
  bearer,
  buildTestApp,
  countSessions,
  machineToken,
  me,
  refresh,
  registerUser,
  testClient,
  type TestClient,
  type TokenPairBody
} from '../helper.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const onPglite = process.env.TEST_DATABASE_URL ? false : 'PostgreSQL only: PGlite is one in-process database, a second instance would not share it'

/** Rounds of the race, and a bound on the time they may take together. */
const ROUNDS = 8
const RACE_BUDGET_MS = 60_000
/** Sessions (one refresh chain each) and login loops per round. */
const SESSIONS = 6
const LOGIN_LOOPS = 4
/** How long the loops go on after the disable answered. */
const AFTER_MS = 150
const POLL_MS = 20
const PROPAGATION_BOUND_MS = 5_000

interface Instance {
  app: App
  adminToken: string
}

interface Attempt {
  kind: 'login' | 'refresh'
  instance: number
  startedAt: number
  endedAt: number
  status: number
  pair?: TokenPairBody
}

function login(app: App, email: string) {
  return app.inject({ method: 'POST', url: `${API_PREFIX}/login`, payload: { email, password: PASSWORD } })
}

function verify(app: App, accessToken: string) {
  return app.inject({ method: 'GET', url: `${API_PREFIX}/verify`, headers: bearer(accessToken) })
}

function disableOn(instance: Instance, userId: string) {
  return instance.app.inject({ method: 'POST', url: `${API_PREFIX}/admin/users/${userId}/disable`, headers: bearer(instance.adminToken) })
}

/** Polls until `check` holds, every POLL_MS up to `boundMs`: how long it took, or undefined. */
async function within(check: () => Promise<boolean>, boundMs: number): Promise<number | undefined> {
  const started = performance.now()
  for (;;) {
    if (await check()) return performance.now() - started
    if (performance.now() - started > boundMs) return undefined
    await sleep(POLL_MS)
  }
}

/** The instances of a race: one app, or on PostgreSQL two on the same database. */
async function instancesFor(t: Test, client: TestClient): Promise<Instance[]> {
  const first = await buildTestApp(t, { clients: [client] })
  const apps = [first.app]
  if (first.onPostgres) {
    const second = await buildTestApp(t, { clients: [client], env: { JWT_PRIVATE_KEY: first.privateKeyPem } })
    apps.push(second.app)
  }
  return Promise.all(apps.map(async (app) => ({ app, adminToken: await machineToken(app, client) })))
}

/**
 * One round: a user with SESSIONS sessions (spread over the instances), a refresh chain per
 * session and LOGIN_LOOPS login loops running on all instances, and a disable on the first
 * instance after `disableDelayMs`. The loops go on until AFTER_MS after the disable answered.
 */
async function race(instances: Instance[], disableDelayMs: number) {
  const at = (i: number) => instances[i % instances.length]
  const registered = await registerUser(at(0).app)
  const { id: userId, email } = registered.user
  const pairs = [registered]
  for (let i = 1; i < SESSIONS; i++) {
    const res = await login(at(i).app, email)
    if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode}`)
    pairs.push(res.json())
  }
  // Every session cached live on every instance, as in production.
  for (const pair of pairs) for (const { app } of instances) if ((await me(app, pair.access_token)).statusCode !== 200) throw new Error('not live')

  const attempts: Attempt[] = []
  let disableAnsweredAt = Number.POSITIVE_INFINITY
  let sessionsWhenAnswered: number | undefined
  const done = () => performance.now() > disableAnsweredAt + AFTER_MS
  /** Whether a request of this loop started after the disable answered (each loop makes one at least). */
  const triedAfter = (startedAt: number) => startedAt > disableAnsweredAt

  async function attempt(kind: Attempt['kind'], instance: number, send: () => Promise<LightMyRequestResponse>): Promise<Attempt> {
    const startedAt = performance.now()
    const res = await send()
    const entry: Attempt = { kind, instance, startedAt, endedAt: performance.now(), status: res.statusCode }
    if (res.statusCode === 200) entry.pair = res.json()
    attempts.push(entry)
    return entry
  }

  /** Refreshes a session over and over with its newest refresh token (twice at once, now and then). */
  async function refreshChain(index: number) {
    let token = pairs[index].refresh_token
    for (let n = 0, last = 0; !done() || !triedAfter(last); n++) {
      const instance = (index + n) % instances.length
      const sends = n % 3 === 0 ? [instance, instance + 1] : [instance]
      const results = await Promise.all(sends.map((i) => attempt('refresh', i % instances.length, () => refresh(instances[i % instances.length].app, token))))
      last = Math.min(...results.map((result) => result.startedAt))
      const next = results.find((result) => result.pair)?.pair
      if (next) token = next.refresh_token
      else await sleep(1) // refused: keep trying the same token, each try must be refused too
    }
  }

  async function loginLoop(index: number) {
    for (let n = 0, last = 0; !done() || !triedAfter(last); n++) {
      const instance = (index + n) % instances.length
      last = (await attempt('login', instance, () => login(instances[instance].app, email))).startedAt
    }
  }

  const disabled = sleep(disableDelayMs).then(async () => {
    const startedAt = performance.now()
    const res = await disableOn(at(0), userId)
    disableAnsweredAt = performance.now()
    sessionsWhenAnswered = await countSessions(at(0).app, userId)
    return { status: res.statusCode, startedAt, answeredAt: disableAnsweredAt }
  })
  await Promise.all([
    ...pairs.map((_pair, i) => refreshChain(i)),
    ...Array.from({ length: LOGIN_LOOPS }, (_unused, i) => loginLoop(i)),
    disabled
  ])
  const disable = await disabled
  return { userId, pairs, attempts, disable, sessionsWhenAnswered, sessionsAfter: await countSessions(at(0).app, userId) }
}

t.test('disable racing refreshes and logins: nothing started after it succeeds, nothing survives it', async (t) => {
  const client = testClient('sessions:admin')
  const instances = await instancesFor(t, client)
  t.comment(`${instances.length} instance(s)`)

  // A login alone, for the delays: the disable lands before, during and after password checks.
  const probe = await registerUser(instances[0].app)
  const t0 = performance.now()
  t.equal((await login(instances[0].app, probe.user.email)).statusCode, 200)
  const loginMs = performance.now() - t0
  t.comment(`a login takes ${loginMs.toFixed(0)} ms`)

  const totals = { rounds: 0, succeededBefore: 0, overlapping: 0, startedAfter: { login: 0, refresh: 0 }, succeededWhileDisabling: 0 }
  const deadline = performance.now() + RACE_BUDGET_MS
  for (let round = 0; round < ROUNDS && performance.now() < deadline; round++) {
    const delay = (loginMs * 2 * round) / ROUNDS
    const result = await race(instances, delay)
    const label = `round ${round} (disable after ${delay.toFixed(0)} ms)`
    totals.rounds += 1
    const { disable, attempts } = result
    t.equal(disable.status, 204, `${label}: the disable answered 204`)
    t.equal(result.sessionsWhenAnswered, 0, `${label}: no session left when the disable answered`)
    t.equal(result.sessionsAfter, 0, `${label}: none after the race either`)

    const after = attempts.filter((a) => a.startedAt > disable.answeredAt)
    const wrong = after.filter((a) => a.status !== 401)
    t.same(wrong, [], `${label}: every request started after the disable answered was refused (401)`)
    const startedAfter = { login: after.filter((a) => a.kind === 'login').length, refresh: after.filter((a) => a.kind === 'refresh').length }
    t.ok(startedAfter.login >= LOGIN_LOOPS && startedAfter.refresh >= SESSIONS, `${label}: logins and refreshes started after it`, startedAfter)
    totals.startedAfter.login += startedAfter.login
    totals.startedAfter.refresh += startedAfter.refresh
    t.ok(attempts.every((a) => a.status === 200 || a.status === 401), `${label}: only 200s and 401s`, { unexpected: attempts.filter((a) => ![200, 401].includes(a.status)) })

    const won = attempts.filter((a) => a.pair)
    totals.succeededBefore += won.length
    totals.overlapping += attempts.filter((a) => a.startedAt < disable.answeredAt && a.endedAt > disable.startedAt).length
    totals.succeededWhileDisabling += won.filter((a) => a.endedAt > disable.startedAt).length

    // Every pair anyone got, and the pairs of before the race, are dead on the instance that
    // disabled at once, and on the others within the propagation bound.
    const everyPair = [...result.pairs, ...won.map((a) => a.pair!)]
    let alive = 0
    for (const pair of everyPair) {
      if ((await me(instances[0].app, pair.access_token)).statusCode !== 401) alive += 1
      if ((await verify(instances[0].app, pair.access_token)).statusCode !== 401) alive += 1
      if ((await refresh(instances[0].app, pair.refresh_token)).statusCode !== 401) alive += 1
      for (const other of instances.slice(1)) {
        const dead = await within(async () => (await me(other.app, pair.access_token)).statusCode === 401, PROPAGATION_BOUND_MS)
        if (dead === undefined) alive += 1
        if ((await refresh(other.app, pair.refresh_token)).statusCode !== 401) alive += 1
      }
    }
    t.equal(alive, 0, `${label}: all ${everyPair.length} token pairs are dead (access 401 at /me and /verify, refresh 401)`)
    t.equal(await countSessions(instances[0].app, result.userId), 0, `${label}: and the checks opened nothing`)
  }
  t.comment(JSON.stringify(totals))
  t.ok(totals.rounds >= 3, `at least 3 rounds within ${RACE_BUDGET_MS} ms`)
  t.ok(totals.succeededBefore > 0, 'requests succeeded before the disable: the race is not vacuous')
  t.ok(totals.overlapping > 0, 'requests were in flight while the disable ran')
})

t.test('a login waits for a disable holding the user row, then finds the user disabled', { skip: onPglite }, async (t) => {
  // The interleaving the random race hits only sometimes, made certain: the disable's transaction
  // (the same statements as services/admin.ts) holds the row while a login's password check has
  // passed and its INSERT_SESSION arrives.
  const { app } = await buildTestApp(t)
  const registered = await registerUser(app)
  let loginStatus: number | undefined
  await app.db.transaction().execute(async (trx) => {
    t.ok(await holdUser(trx, registered.user.id, 'update'), 'the user row is held for update')
    void login(app, registered.user.email).then((res) => (loginStatus = res.statusCode))
    // The password check passed and the login's INSERT_SESSION waits for this transaction's lock.
    const waiting = await within(async () => (await adminQuery(process.env.TEST_DATABASE_URL!,
      "select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like '%not disabled for key share%'")).length > 0,
    PROPAGATION_BOUND_MS)
    t.not(waiting, undefined, "the login's session insert waits on the held user row")
    t.equal(loginStatus, undefined, 'the login has not answered while the disable is open')
    await setUserDisabled(trx, registered.user.id, true, new Date())
  })
  t.not(await within(async () => loginStatus !== undefined, PROPAGATION_BOUND_MS), undefined, 'the login answers after the commit')
  t.equal(loginStatus, 401, 'refused: the user is disabled')
  t.equal(await countSessions(app, registered.user.id), 1, 'only the registration session, no new one')
})

t.test('disable on instance A: instance B, with the access token cached live, answers 401 within the bound', { skip: onPglite }, async (t) => {
  const client = testClient('sessions:admin')
  const [a, b] = await instancesFor(t, client)
  const registered = await registerUser(a.app)
  const onB = await login(b.app, registered.user.email)
  t.equal(onB.statusCode, 200)
  const pairs: TokenPairBody[] = [registered, onB.json()]
  for (const pair of pairs) {
    t.equal((await me(b.app, pair.access_token)).statusCode, 200, 'live on B')
    t.equal((await verify(b.app, pair.access_token)).statusCode, 204)
    t.equal((await me(b.app, pair.access_token)).statusCode, 200, 'and cached live on B')
  }

  t.equal((await disableOn(a, registered.user.id)).statusCode, 204, 'disabled on A')
  for (const [i, pair] of pairs.entries()) {
    t.equal((await me(a.app, pair.access_token)).statusCode, 401, `pair ${i}: dead on A at once`)
    const delay = await within(async () => (await me(b.app, pair.access_token)).statusCode === 401, PROPAGATION_BOUND_MS)
    t.comment(`pair ${i}: the disable reached B in ${delay === undefined ? 'NEVER' : `${delay.toFixed(1)} ms`}`)
    t.not(delay, undefined, `pair ${i}: B answers 401 at /me within ${PROPAGATION_BOUND_MS} ms`)
    const viaVerify = await verify(b.app, pair.access_token)
    t.equal(viaVerify.statusCode, 401, `pair ${i}: /verify on B too`)
    t.equal(viaVerify.headers['www-authenticate'], 'Bearer error="invalid_token"')
    t.equal((await refresh(b.app, pair.refresh_token)).statusCode, 401, `pair ${i}: and /refresh on B`)
  }
  t.equal((await login(b.app, registered.user.email)).statusCode, 401, 'login on B is refused')
  t.equal(await countSessions(b.app, registered.user.id), 0)
})
