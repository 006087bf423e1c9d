// Multi-core: src/cluster.ts runs one worker per core on one port; every worker is an
// instance with its own LISTEN connection, so a logout on one worker holds on all of them.
import { request as httpRequest } from 'node:http'
import pg from 'pg'
import t from 'tap'
import { generateSigningKeyPem } from '../../src/auth/keys.js'
import { PASSWORD, uniqueEmail, type TokenPairBody } from '../helper.js'
import { startServer } from '../support/server-process.js'

const databaseUrl = process.env.TEST_DATABASE_URL

/** A request on a new connection each time, so node:cluster hands it to any worker. */
function call(url: string, method: string, path: string, token?: string, body?: unknown): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = httpRequest(`${url}/api/v1/auth${path}`, {
      method,
      agent: false,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {})
      }
    })
    req.on('response', (res) => {
      let text = ''
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode!, body: text }))
    })
    req.on('error', reject)
    req.end(payload)
  })
}

t.test('logout on one worker holds on every worker', { skip: databaseUrl ? false : 'needs PostgreSQL: set TEST_DATABASE_URL (cluster mode refuses PGlite)' }, async (t) => {
  const server = await startServer(
    { DATABASE_URL: databaseUrl!, JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA'), WORKERS: '2' },
    { entry: 'src/cluster.ts' }
  )
  const admin = new pg.Client({ connectionString: databaseUrl })
  await admin.connect()
  t.teardown(async () => {
    await admin.end()
    await server.stop()
  })

  let listeners = 0
  for (let i = 0; i < 100 && listeners < 2; i++) {
    const { rows } = await admin.query(
      "select count(*)::int as n from pg_stat_activity where application_name like 'auth-service-listener/%' and application_name <> $1",
      [`auth-service-listener/${server.pid}`]
    )
    listeners = rows[0].n
    if (listeners < 2) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.ok(listeners >= 2, `each worker listens on its own connection (${listeners} listeners)`)

  const email = uniqueEmail('cluster')
  t.equal((await call(server.url, 'POST', '/register', undefined, { email, password: PASSWORD })).status, 201)
  for (let round = 0; round < 3; round++) {
    const session = JSON.parse((await call(server.url, 'POST', '/login', undefined, { email, password: PASSWORD })).body) as TokenPairBody
    const before = await Promise.all(Array.from({ length: 10 }, () => call(server.url, 'GET', '/verify', session.access_token)))
    t.same(before.map((r) => r.status), Array(10).fill(204), `round ${round}: live on every worker`)
    t.equal((await call(server.url, 'POST', '/logout', session.access_token)).status, 204)
    let after: number[] = []
    for (let i = 0; i < 100; i++) {
      after = (await Promise.all(Array.from({ length: 10 }, () => call(server.url, 'GET', '/verify', session.access_token)))).map((r) => r.status)
      if (after.every((status) => status === 401)) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    t.same(after, Array(10).fill(401), `round ${round}: dead on every worker`)
  }
  t.equal(await server.stop(), 0, 'the cluster shuts down cleanly')
})

t.test('cluster mode refuses the embedded database with one clear line', async (t) => {
  await t.rejects(startServer({ JWT_PRIVATE_KEY: generateSigningKeyPem('EdDSA') }, { entry: 'src/cluster.ts', readyTimeoutMs: 10_000 }), /Cluster mode needs DATABASE_URL/)
})
