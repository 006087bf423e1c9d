// Push with two instances on one PostgreSQL database (docs/ssf.md, "Push"): one deliverer per
// stream (its lease), so every SET arrives once and in order; when the holder shuts down it gives
// the lease back and the other instance delivers what follows at once.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { API_PREFIX, adminQuery, bearer, buildTestApp, decodeJwt, loginUser, machineToken, registerUser, testClient, type TokenPairBody } from '../helper.js'
import { PUSH, SESSION_REVOKED, createStream, decodeSet, eventually } from './helper.js'

const shared = process.env.TEST_DATABASE_URL

t.test('two instances, one deliverer per stream', { skip: shared ? false : 'PostgreSQL only (TEST_DATABASE_URL)' }, async (t) => {
  const received: string[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      received.push(decodeSet(Buffer.concat(chunks).toString()).payload.sub_id.session.id)
      response.writeHead(202).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const name = `auth_test_own_${randomUUID().replaceAll('-', '')}`
  await adminQuery(shared!, `create database ${name}`)
  t.teardown(() => adminQuery(shared!, `drop database if exists ${name} with (force)`))
  const url = new URL(shared!)
  url.pathname = `/${name}`
  const client = testClient('ssf.manage ssf.read')
  const env = { DATABASE_URL: url.toString(), SSF_PUSH_ALLOWED_ORIGINS: origin }
  const a = await buildTestApp(t, { env, clients: [client] })
  const b = await buildTestApp(t, { env, clients: [client] })
  await Promise.all([a.app.ready(), b.app.ready()])

  const stream = await createStream(a.app, await machineToken(a.app, client), {
    delivery: { method: PUSH, endpoint_url: `${origin}/events` },
    events_requested: [SESSION_REVOKED]
  })
  const first = await registerUser(a.app)
  const pairs: TokenPairBody[] = [first]
  for (let i = 0; i < 11; i++) pairs.push(await loginUser(i % 2 ? a.app : b.app, first.user.email))
  // Logouts on both instances, one after another: their events are in this order.
  for (const [i, pair] of pairs.entries()) {
    const app = i % 2 ? b.app : a.app
    await app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(pair.access_token) })
  }
  const sids = pairs.map((pair) => decodeJwt(pair.access_token).payload.sid)
  await eventually(() => received.length >= sids.length, 10_000, 'every SET')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(received, sids, 'each once, in order')

  const row = await a.app.db.selectFrom('ssf_streams').select('lease_owner').where('id', '=', stream.stream_id).executeTakeFirstOrThrow()
  const [holder, other] = row.lease_owner === a.app.ssf.push.owner ? [a, b] : [b, a]
  t.equal(row.lease_owner, holder.app.ssf.push.owner, 'one instance holds the stream')
  await holder.app.close()

  const later = await registerUser(other.app)
  const started = Date.now()
  await other.app.inject({ method: 'POST', url: `${API_PREFIX}/logout`, headers: bearer(later.access_token) })
  await eventually(() => received.length === sids.length + 1, 5_000, 'the SET after the holder stopped')
  t.equal(received.at(-1), decodeJwt(later.access_token).payload.sid)
  t.ok(Date.now() - started < 3_000, 'the lease was given back: no wait for it to expire')
})
