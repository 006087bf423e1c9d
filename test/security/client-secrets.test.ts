// No client secret, nor its hash, ever leaves the service (the issue's property test; the
// contract's "Machine clients": "No plain secret is ever stored"): random sequences of calls to
// /token (Basic and post, right and wrong secrets, a secret one character off, the hash sent as the
// secret, the secret sent as the client id), /introspect and the admin endpoints, and after each
// sequence none of the secrets, their hashes (in any encoding) or the Basic value of "id:secret"
// occurs in the log (debug level, the production logger), in any response (status line, headers,
// body) or in the audit trail (every column of every auth_events row, as text).
//
// Reproducing a failure: FUZZ_SEED=<seed> FUZZ_PATH=<path> as for test/fuzz/ (its params()).
import { createHash } from 'node:crypto'
import { Writable } from 'node:stream'
import fc from 'fast-check'
import type { LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import t from 'tap'
import { hashClientSecret } from '../../src/auth/service-clients.js'
import { API_PREFIX, bearer, buildTestApp, form, machineToken, registerUser, testClient, type TestClient } from '../helper.js'
import { params } from '../fuzz/support.js'

const lines: string[] = []
const logStream = new Writable({
  write(chunk, _encoding, done) {
    lines.push(...chunk.toString().split('\n').filter(Boolean))
    done()
  }
})

const introspector = testClient('introspect')
const supportTool = testClient('sessions:admin')
const allScopes = testClient('introspect sessions:admin ssf.manage ssf.read')
const clients: readonly TestClient[] = [introspector, supportTool, allScopes]
const { app } = await buildTestApp(t, { clients, env: { LOG_LEVEL: 'debug' }, logStream, ownDatabase: true })
const victim = await registerUser(app)
const adminToken = await machineToken(app, supportTool)
const introspectToken = await machineToken(app, introspector)

const b64 = (text: string) => Buffer.from(text).toString('base64')
const b64url = (text: string) => Buffer.from(text).toString('base64url')

/** Every form in which a client's secret or its hash could leak. */
function leakFormsOf(client: TestClient): string[] {
  const hash = hashClientSecret(client.secret)
  const digest = createHash('sha256').update(client.secret, 'utf8').digest()
  const pair = `${client.clientId}:${client.secret}`
  return [
    client.secret,
    encodeURIComponent(client.secret),
    hash,
    hash.slice('sha256:'.length),
    digest.toString('hex'),
    digest.toString('base64'),
    b64(pair),
    b64url(pair),
    b64(client.secret),
    b64url(client.secret)
  ]
}
const forbidden = new Set(clients.flatMap(leakFormsOf))

// ---- the calls ----------------------------------------------------------------------------

/** What a caller presents as its id and secret. */
const credential = fc.oneof(
  { arbitrary: fc.constant({ kind: 'right' as const }), weight: 6 },
  fc.constant({ kind: 'wrong' as const }),
  // The secret with one character changed: all but one character of the real secret.
  fc.record({ kind: fc.constant('one-char-off' as const), at: fc.nat({ max: 42 }), by: fc.integer({ min: 1, max: 63 }) }),
  fc.constant({ kind: 'hash-as-secret' as const }),
  fc.constant({ kind: 'secret-as-client-id' as const }),
  fc.constant({ kind: 'hash-as-client-id' as const }),
  fc.constant({ kind: 'swapped' as const }), // id and secret the wrong way round
  fc.constant({ kind: 'other-clients-secret' as const }),
  fc.constant({ kind: 'secret-with-suffix' as const })
)
type Credential = typeof credential extends fc.Arbitrary<infer C> ? C : never

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** The id and secret presented by `credential` for `client`; secrets generated on the way are forbidden too. */
function presented(client: TestClient, c: Credential): { id: string, secret: string } {
  const other = clients[(clients.indexOf(client) + 1) % clients.length]
  switch (c.kind) {
    case 'right':
      return { id: client.clientId, secret: client.secret }
    case 'wrong':
      return { id: client.clientId, secret: 'not-the-secret' }
    case 'one-char-off': {
      const at = c.at % client.secret.length
      const changed = BASE64URL[(BASE64URL.indexOf(client.secret[at]) + c.by) % BASE64URL.length]
      const secret = client.secret.slice(0, at) + changed + client.secret.slice(at + 1)
      forbidden.add(secret)
      forbidden.add(b64(`${client.clientId}:${secret}`))
      return { id: client.clientId, secret }
    }
    case 'hash-as-secret':
      return { id: client.clientId, secret: hashClientSecret(client.secret) }
    case 'secret-as-client-id':
      return { id: client.secret, secret: client.secret }
    case 'hash-as-client-id':
      return { id: hashClientSecret(client.secret).slice('sha256:'.length), secret: client.secret }
    case 'swapped':
      return { id: client.secret, secret: client.clientId }
    case 'other-clients-secret':
      return { id: client.clientId, secret: other.secret }
    case 'secret-with-suffix':
      forbidden.add(`${client.secret}x`)
      return { id: client.clientId, secret: `${client.secret}x` }
  }
}

const clientIndex = fc.nat({ max: clients.length - 1 })
const scopeParam = fc.option(fc.constantFrom('introspect', 'sessions:admin', 'introspect sessions:admin', 'ssf.read', 'bogus'), { nil: undefined })

const tokenCall = fc.record({
  call: fc.constant('token' as const),
  client: clientIndex,
  method: fc.constantFrom('basic' as const, 'post' as const, 'both' as const),
  credential,
  scope: scopeParam
})
const introspectCall = fc.record({
  call: fc.constant('introspect' as const),
  client: clientIndex,
  method: fc.constantFrom('basic' as const, 'bearer' as const, 'post' as const),
  credential,
  token: fc.constantFrom('access' as const, 'refresh' as const, 'garbage' as const, 'the secret' as const)
})
const adminCall = fc.record({
  call: fc.constant('admin' as const),
  client: clientIndex,
  auth: fc.constantFrom('bearer' as const, 'basic' as const, 'secret-as-bearer' as const),
  credential,
  op: fc.constantFrom('find' as const, 'list' as const, 'end-one' as const, 'disable' as const, 'enable' as const)
})
type Call = typeof tokenCall extends fc.Arbitrary<infer A> ? A : never
type AnyCall = Call | (typeof introspectCall extends fc.Arbitrary<infer B> ? B : never) | (typeof adminCall extends fc.Arbitrary<infer C> ? C : never)

const basic = (id: string, secret: string) => ({ authorization: `Basic ${b64(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}` })

function send(call: AnyCall): Promise<LightMyRequestResponse> {
  const client = clients[call.client]
  const { id, secret } = presented(client, call.credential)
  switch (call.call) {
    case 'token': {
      const fields: Record<string, string> = { grant_type: 'client_credentials', ...(call.scope === undefined ? {} : { scope: call.scope }) }
      if (call.method !== 'basic') Object.assign(fields, { client_id: id, client_secret: secret })
      const body = form(fields)
      const headers = { ...body.headers, ...(call.method === 'post' ? {} : basic(id, secret)) }
      return app.inject({ method: 'POST', url: `${API_PREFIX}/token`, headers, payload: body.payload })
    }
    case 'introspect': {
      const token = { access: victim.access_token, refresh: victim.refresh_token, garbage: 'garbage', 'the secret': client.secret }[call.token]
      const fields: Record<string, string> = { token, ...(call.method === 'post' ? { client_id: id, client_secret: secret } : {}) }
      const body = form(fields)
      const auth = call.method === 'basic' ? basic(id, secret) : call.method === 'bearer' ? bearer(introspectToken) : {}
      return app.inject({ method: 'POST', url: `${API_PREFIX}/introspect`, headers: { ...body.headers, ...auth }, payload: body.payload })
    }
    case 'admin': {
      const headers = call.auth === 'bearer' ? bearer(adminToken) : call.auth === 'basic' ? basic(id, secret) : bearer(secret)
      const user = `/users/${victim.user.id}`
      const [method, path] = {
        find: ['GET', `/users?email=${encodeURIComponent(victim.user.email)}`],
        list: ['GET', `${user}/sessions`],
        'end-one': ['DELETE', `${user}/sessions/00000000-0000-4000-8000-000000000000`],
        disable: ['POST', `${user}/disable`],
        enable: ['POST', `${user}/enable`]
      }[call.op] as ['GET' | 'DELETE' | 'POST', string]
      return app.inject({ method, url: `${API_PREFIX}/admin${path}`, headers })
    }
  }
}

// ---- the checks ---------------------------------------------------------------------------

/** The first forbidden string `text` contains, with a little context, or undefined. */
function leakIn(text: string): string | undefined {
  for (const value of forbidden) {
    const at = text.indexOf(value)
    if (at >= 0) return `${JSON.stringify(value)} in …${text.slice(Math.max(0, at - 80), at + value.length + 40)}…`
  }
  return undefined
}

/** Every column of the audit rows after `afterId`, as text. */
async function auditRowsAfter(afterId: number): Promise<{ text: string[], lastId: number }> {
  const { rows } = await sql<{ id: number, row: string }>`select id, e::text as row from auth_events e where id > ${afterId} order by id`.execute(app.db)
  return { text: rows.map((r) => r.row), lastId: rows.length > 0 ? Number(rows[rows.length - 1].id) : afterId }
}

/** A token issued, a client authentication failed and an introspection answered, in that order. */
const coveringCalls: AnyCall[] = [
  { call: 'token', client: 0, method: 'basic', credential: { kind: 'right' }, scope: undefined },
  { call: 'token', client: 0, method: 'post', credential: { kind: 'wrong' }, scope: undefined },
  { call: 'introspect', client: 0, method: 'basic', credential: { kind: 'right' }, token: 'access' }
]

let lastAuditId = (await auditRowsAfter(0)).lastId
const tally = new Map<string, number>()
let totals = { calls: 0, logLines: 0, auditRows: 0 }

t.test('no client secret or hash in logs, responses or the audit trail', async (t) => {
  // The checks see something: the calls above were logged and audited.
  t.ok(lines.some((line) => line.includes('client_token_issued')), 'token issuance is logged')

  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(tokenCall, introspectCall, adminCall), { minLength: 1, maxLength: 12 }), async (calls) => {
      const firstLine = lines.length
      const responses: string[] = []
      for (const call of calls) {
        const res = await send(call)
        const key = `${call.call} ${res.statusCode}`
        tally.set(key, (tally.get(key) ?? 0) + 1)
        if (res.statusCode >= 500) throw new Error(`${key}: ${res.body}`)
        responses.push(`${res.statusCode} ${res.statusMessage} ${JSON.stringify(res.headers)} ${res.body}`)
      }
      const audit = await auditRowsAfter(lastAuditId)
      lastAuditId = audit.lastId
      const logged = lines.slice(firstLine)
      totals = { calls: totals.calls + calls.length, logLines: totals.logLines + logged.length, auditRows: totals.auditRows + audit.text.length }
      for (const [where, texts] of [['the log', logged], ['a response', responses], ['the audit trail', audit.text]] as const) {
        const leak = leakIn(texts.join('\n'))
        if (leak) throw new Error(`a client secret or hash in ${where}: ${leak}`)
      }
    }),
    // One fixed sequence first, so that a small FUZZ_SCALE still covers what the tally checks below.
    { ...params(30), examples: [[coveringCalls]] }
  )

  t.comment(`${totals.calls} calls, ${totals.logLines} log lines, ${totals.auditRows} audit rows checked; ${[...tally].sort().map(([k, n]) => `${k}×${n}`).join(' ')}`)
  t.ok(totals.auditRows > 0 && totals.logLines > 0, 'the runs were logged and audited')
  t.ok([...tally.keys()].some((key) => key === 'token 200'), 'some tokens were issued')
  t.ok([...tally.keys()].some((key) => key === 'token 401'), 'some client authentications failed')
  t.ok([...tally.keys()].some((key) => key === 'introspect 200'), 'some introspections answered')

  // And over everything this file produced, no fragment of a secret either (16 characters or more).
  const everything = [...lines, ...(await auditRowsAfter(0)).text].join('\n')
  for (const client of clients) {
    const fragments = Array.from({ length: client.secret.length - 15 }, (_, i) => client.secret.slice(i, i + 16))
    t.notOk(fragments.some((fragment) => everything.includes(fragment)), `no 16-character fragment of ${client.clientId}'s secret in the log or the audit trail`)
  }
})
