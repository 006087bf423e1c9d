// Logout reaching a downstream service, measured with real processes on loopback: two instances of
// the auth service on one PostgreSQL database behind one issuer URL, and a downstream Fastify
// service using the package installed from its tarball. Sessions end on instance A; the
// downstream's poll stream is served by instance B, so every event crosses instances through the
// database. For each way a session ends, the time from the ending call's answer to the downstream
// refusing the token is printed (p50/p99/max); the test fails only beyond a generous bound. Then
// instance B is killed and restarted, and the stream's connections are cut: nothing is missed, and
// while the stream is stale the downstream answers 503, never 200.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { pack, project, startDownstream } from './downstream.js'
import {
  API, PASSWORD, eventually, hasTransmitter, horizonReport, login, logout, machineToken, newClient, register, startAuth, startFront, type Session
} from './support.js'

/** Generous: a logout reaches a long-polling downstream in milliseconds; a loaded CI machine is slow. */
const PROPAGATION_BOUND_MS = 5_000
/** The downstream's staleAfterMs: short, so the outage below turns stale within the test. */
const STALE_AFTER_MS = 1_500

const onPostgres = process.env.TEST_DATABASE_URL ? false : 'needs PostgreSQL (TEST_DATABASE_URL): two instances share one database'

t.test('logout reaches a downstream service: two instances, the package from its tarball', { skip: onPostgres }, async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'verifier-propagation-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const { tarball } = await pack(work)
  const dir = await project(work, 'downstream', ['fastify@5', 'fastify-plugin'], tarball)

  // One issuer URL for both instances (a front, as a load balancer would be), pointing at B; the
  // ending calls go to A's own address.
  const front = await startFront(t)
  const admin = newClient()
  // REFRESH_REUSE_GRACE=0: every reuse of a rotated refresh token is theft, at once.
  const env = { REFRESH_REUSE_GRACE: '0' }
  const a = await startAuth(t, { publicUrl: front.url, extraClients: [{ client: admin, scope: 'sessions:admin' }], env })
  const direct = { url: a.server.url, client: admin }
  if (!(await hasTransmitter(direct))) throw new Error('the auth service has no SSF transmitter')
  const startB = () => startAuth(t, { publicUrl: front.url, client: a.client, privateKeyPem: a.privateKeyPem, extraClients: [{ client: admin, scope: 'sessions:admin' }], env })
  let b = await startB()
  front.target = Number(new URL(b.server.url).port)
  const adminToken = await machineToken(direct, 'sessions:admin')

  const downstream = await startDownstream(t, dir, {
    issuer: front.url, clientId: a.client.clientId, clientSecret: a.client.clientSecret, staleAfterMs: STALE_AFTER_MS
  })

  const call = async (method: string, url: string, token?: string, body?: unknown) => {
    const response = await fetch(`${direct.url}${API}${url}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {})
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined }
  }
  const sidOf = (session: Session): string => JSON.parse(Buffer.from(session.accessToken.split('.')[1], 'base64url').toString()).sid

  /** Every token accepted now (200), or the measurement would mean nothing. */
  async function accepted(sessions: Session[]) {
    for (const session of sessions) {
      const answer = await downstream.orders(session.accessToken)
      if (answer.status !== 200) throw new Error(`not accepted before the ending: ${answer.status} ${JSON.stringify(answer.body)}`)
    }
  }

  /** Milliseconds from `since` until the downstream refuses every token with 401 (probing every 2 ms). */
  async function untilRefused(tokens: string[], since: number): Promise<number> {
    let pending = tokens
    while (pending.length > 0) {
      const answers = await Promise.all(pending.map((token) => downstream.orders(token)))
      const odd = answers.find((answer) => answer.status !== 200 && answer.status !== 401)
      if (odd) throw new Error(`the downstream answered ${odd.status}: ${JSON.stringify(odd.body)}`)
      pending = pending.filter((_, i) => answers[i].status !== 401)
      if (pending.length === 0) break
      if (performance.now() - since > PROPAGATION_BOUND_MS) {
        // Seen once on a loaded CI machine (a password change, 2026-12-02) and not reproduced: the report says where it stood.
        const report = { downstream: await downstream.status(), database: await horizonReport() }
        throw new Error(`still accepted ${PROPAGATION_BOUND_MS} ms after the ending: ${JSON.stringify(report)}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    return performance.now() - since
  }

  /** One way a session ends: sets up its sessions, ends them, returns the tokens that must die. */
  type Ending = () => Promise<{ answered: number, ended: Session[] }>
  const expect = (status: number, expected: number, what: string) => {
    if (status !== expected) throw new Error(`${what}: ${status}, expected ${expected}`)
  }
  const pair = async () => {
    const first = await register(direct)
    return [first, await login(direct, first.email)] as const
  }
  const endings: Record<string, { tries: number, end: Ending }> = {
    'logout': {
      tries: 40,
      end: async () => {
        const session = await register(direct)
        await accepted([session])
        expect(await logout(direct, session.accessToken), 204, 'logout')
        return { answered: performance.now(), ended: [session] }
      }
    },
    'logout with refresh_token': {
      tries: 8,
      end: async () => {
        const [first, second] = await pair()
        await accepted([second])
        expect((await call('POST', '/logout', first.accessToken, { refresh_token: second.refreshToken })).status, 204, 'logout')
        return { answered: performance.now(), ended: [second] }
      }
    },
    'logout all_devices': {
      tries: 8,
      end: async () => {
        const sessions = await pair()
        await accepted([...sessions])
        expect((await call('POST', '/logout', sessions[0].accessToken, { all_devices: true })).status, 204, 'logout')
        return { answered: performance.now(), ended: [...sessions] }
      }
    },
    'DELETE /sessions/:id': {
      tries: 8,
      end: async () => {
        const [first, second] = await pair()
        await accepted([second])
        expect((await call('DELETE', `/sessions/${sidOf(second)}`, first.accessToken)).status, 204, 'delete')
        return { answered: performance.now(), ended: [second] }
      }
    },
    'POST /revoke': {
      tries: 8,
      end: async () => {
        const session = await register(direct)
        await accepted([session])
        expect((await call('POST', '/revoke', undefined, { token: session.refreshToken })).status, 200, 'revoke')
        return { answered: performance.now(), ended: [session] }
      }
    },
    'refresh token theft': {
      tries: 8,
      end: async () => {
        const session = await register(direct)
        const rotated = await call('POST', '/refresh', undefined, { refresh_token: session.refreshToken })
        expect(rotated.status, 200, 'refresh')
        const current = { ...session, accessToken: rotated.body.access_token, refreshToken: rotated.body.refresh_token }
        await accepted([current])
        expect((await call('POST', '/refresh', undefined, { refresh_token: session.refreshToken })).status, 401, 'reuse')
        return { answered: performance.now(), ended: [current] }
      }
    },
    'password change': {
      tries: 8,
      end: async () => {
        const [first, second] = await pair()
        await accepted([second])
        const changed = await call('POST', '/password', first.accessToken, { current_password: PASSWORD, new_password: 'a different horse battery staple' })
        expect(changed.status, 204, 'password')
        return { answered: performance.now(), ended: [second] }
      }
    },
    'admin: end one session': {
      tries: 8,
      end: async () => {
        const session = await register(direct)
        await accepted([session])
        expect((await call('DELETE', `/admin/users/${session.userId}/sessions/${sidOf(session)}`, adminToken)).status, 204, 'admin end')
        return { answered: performance.now(), ended: [session] }
      }
    },
    'admin: end all sessions': {
      tries: 8,
      end: async () => {
        const sessions = await pair()
        await accepted([...sessions])
        expect((await call('DELETE', `/admin/users/${sessions[0].userId}/sessions`, adminToken)).status, 204, 'admin end all')
        return { answered: performance.now(), ended: [...sessions] }
      }
    },
    'admin: disable': {
      tries: 8,
      end: async () => {
        const session = await register(direct)
        await accepted([session])
        expect((await call('POST', `/admin/users/${session.userId}/disable`, adminToken)).status, 204, 'disable')
        return { answered: performance.now(), ended: [session] }
      }
    }
  }

  const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]
  const describe = (delays: number[]) => {
    const sorted = [...delays].sort((x, y) => x - y)
    return `n ${sorted.length}, p50 ${percentile(sorted, 0.5).toFixed(1)} ms, p99 ${percentile(sorted, 0.99).toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms`
  }

  t.test('every way a session ends: the downstream refuses its tokens', async (t) => {
    // Settle: the downstream's long poll waiting on B.
    await eventually(async () => (await downstream.status()).state === 'ready', 10_000, 'the downstream ready')
    const all: number[] = []
    for (const [name, { tries, end }] of Object.entries(endings)) {
      const delays: number[] = []
      for (let i = 0; i < tries; i++) {
        const { answered, ended } = await end()
        delays.push(await untilRefused(ended.map((session) => session.accessToken), answered))
      }
      all.push(...delays)
      t.comment(`${name}: ${describe(delays)}`)
      t.pass(`${name}: refused within ${PROPAGATION_BOUND_MS} ms, ${tries} tries`)
    }
    t.comment(`propagation from the ending call's answer on A to a 401 from the downstream (stream on B), all ways: ${describe(all)}`)
    t.equal((await downstream.status()).streamsCreated, 1, 'one stream throughout')
  })

  t.test('instance B killed and restarted: stale means 503, never 200; nothing missed', async (t) => {
    const sessions = await Promise.all(Array.from({ length: 5 }, () => register(direct)))
    await accepted(sessions)
    b.server.child.kill('SIGKILL')
    await new Promise((resolve) => b.server.child.once('exit', resolve))
    const killedAt = performance.now()
    const ended: Array<{ token: string, endedAt: number }> = []
    for (const session of sessions) {
      expect(await logout(direct, session.accessToken), 204, 'logout while B is down')
      ended.push({ token: session.accessToken, endedAt: performance.now() })
    }

    // Probe until every token has been refused as stale (503) for a while.
    const seen = new Map<number, number>()
    let firstStale = Infinity
    let lastAccepted = -Infinity
    let acceptedAfterStale = 0
    while (performance.now() - killedAt < STALE_AFTER_MS + 3_000) {
      for (const session of sessions) {
        const answer = await downstream.orders(session.accessToken)
        const at = performance.now() - killedAt
        seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1)
        if (answer.status === 200) {
          lastAccepted = at
          if (at > firstStale) acceptedAfterStale++
        }
        if (answer.status === 503) {
          firstStale = Math.min(firstStale, at)
          if (answer.retryAfter === null) throw new Error('a 503 without Retry-After')
        }
      }
      if (firstStale < Infinity && performance.now() - killedAt > firstStale + 1_000) break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    t.comment(`after the kill: answers ${JSON.stringify(Object.fromEntries(seen))}; last 200 at ${lastAccepted.toFixed(0)} ms, first 503 at ${firstStale.toFixed(0)} ms`)
    t.ok(firstStale < Infinity, 'stale: 503')
    t.equal(acceptedAfterStale, 0, 'never 200 once stale')
    t.ok(lastAccepted <= STALE_AFTER_MS + 500, `not accepted past staleAfterMs (${STALE_AFTER_MS} ms) after the last contact`)
    t.same([...seen.keys()].filter((status) => ![200, 503].includes(status)), [], 'only 200 (within staleAfterMs) or 503 while B is down')

    b = await startB()
    front.target = Number(new URL(b.server.url).port)
    const restartedAt = performance.now()
    const seenAfter = await untilAllRefused(ended, 15_000)
    t.comment(`every logout made during the outage refused ${(performance.now() - restartedAt).toFixed(0)} ms after the restart; answers meanwhile ${JSON.stringify(seenAfter)}`)
    t.notOk(seenAfter[200], 'no 200 after the restart')
    t.equal((await downstream.status()).streamsCreated, 1, 'the same stream: what was not acknowledged arrived again')
  })

  /**
   * Probes until every token is refused (401). On the way, 503 (stale) is fine, and so is 200 up to
   * staleAfterMs after the token's ending (what the downstream may not have learnt yet); a later
   * 200 or any other status fails. Returns the answers counted by status.
   */
  async function untilAllRefused(ended: Array<{ token: string, endedAt: number }>, timeoutMs: number) {
    const seen: Record<number, number> = {}
    let pending = ended
    await eventually(async () => {
      const answers = await Promise.all(pending.map(({ token }) => downstream.orders(token)))
      const now = performance.now()
      answers.forEach(({ status }, i) => {
        seen[status] = (seen[status] ?? 0) + 1
        if (status === 200 && now - pending[i].endedAt > STALE_AFTER_MS + 500) throw new Error(`a token accepted ${(now - pending[i].endedAt).toFixed(0)} ms after its ending`)
        if (![200, 401, 503].includes(status)) throw new Error(`the downstream answered ${status}`)
      })
      pending = pending.filter((_, i) => answers[i].status !== 401)
      return pending.length === 0
    }, timeoutMs, 'every ended session\'s token refused')
    return seen
  }

  t.test("the stream's connections cut while sessions end: every ending arrives", async (t) => {
    await eventually(async () => (await downstream.status()).state === 'ready', 15_000, 'the downstream ready again')
    const sessions = await Promise.all(Array.from({ length: 12 }, () => register(direct)))
    await accepted(sessions)
    let cuts = 0
    const cutter = setInterval(() => {
      front.cutConnections()
      cuts++
    }, 100)
    const ended: Array<{ token: string, endedAt: number }> = []
    try {
      for (const session of sessions) {
        expect(await logout(direct, session.accessToken), 204, 'logout')
        ended.push({ token: session.accessToken, endedAt: performance.now() })
        await new Promise((resolve) => setTimeout(resolve, 120))
      }
    } finally {
      clearInterval(cutter)
    }
    const seen = await untilAllRefused(ended, 15_000)
    t.comment(`${cuts} cuts during ${sessions.length} logouts; answers until all were refused: ${JSON.stringify(seen)}`)
    t.pass(`all ${sessions.length} refused; none accepted past staleAfterMs after its logout`)
  })

  t.test('downstream closes cleanly', async (t) => {
    t.equal(await downstream.stop(), 0)
  })
})
