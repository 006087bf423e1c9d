// An issuer and transmitter in the test process, reached through the verifier's `fetch` option:
// for the rules that the real service never breaks (a SET with the wrong `typ`, `aud` or `iss`, an
// unknown subject format, a user-wide revocation, thousands of revocations at once), where the
// test must write the SETs itself. The real service is tested in the other files.
import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import type { FetchLike } from '../src/index.js'

export const ISSUER = 'https://issuer.test'
export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
export const CLIENT = { clientId: 'downstream', clientSecret: 'downstream-secret' }

interface Key {
  kid: string
  privateKey: CryptoKey
  jwk: JWK
}

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true })
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' } }
}

export interface FakeIssuer {
  fetch: FetchLike
  /** What the verifier did. */
  readonly seen: { polls: number, tokens: number, created: number, deleted: number, acked: string[], errors: Record<string, { err: string }> }
  /** 'ok', or every poll fails ('fail') or answers 401 once ('unauthorized'). */
  pollMode: 'ok' | 'fail' | 'unauthorized'
  /** Override members of the metadata documents. */
  asMetadata: Record<string, unknown>
  ssfMetadata: Record<string, unknown>
  /** The keys the JWKS publishes. */
  published: Key[]
  signing: Key
  newKey(kid: string): Promise<Key>
  accessToken(claims?: Record<string, unknown>, key?: Key): Promise<string>
  /** Queues a SET for delivery; returns its jti. */
  deliver(events: Record<string, unknown>, options?: { subId?: unknown, header?: Record<string, unknown>, claims?: Record<string, unknown>, key?: Key }): Promise<string>
  revokeSession(sid: string, atSec?: number): Promise<string>
  /** Queued and not yet acknowledged. */
  readonly pending: number
}

export async function fakeIssuer(): Promise<FakeIssuer> {
  const signing = await newKey('k1')
  const queue = new Map<string, string>()
  let wake: (() => void) | undefined
  const json = (status: number, body?: unknown) => new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

  const issuer: FakeIssuer = {
    seen: { polls: 0, tokens: 0, created: 0, deleted: 0, acked: [], errors: {} },
    pollMode: 'ok',
    asMetadata: {},
    ssfMetadata: {},
    published: [signing],
    signing,
    newKey,
    get pending() {
      return queue.size
    },
    async accessToken(claims = {}, key = signing) {
      const now = Math.floor(Date.now() / 1000)
      const payload = { sub: randomUUID(), sid: randomUUID(), client_id: 'web', jti: randomUUID(), iat: now, exp: now + 600, ...claims }
      return new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }).setIssuer(ISSUER).setAudience('api').sign(key.privateKey)
    },
    async deliver(events, options = {}) {
      const jti = randomUUID()
      const payload = { iss: ISSUER, aud: CLIENT.clientId, iat: Math.floor(Date.now() / 1000), jti, events, ...(options.subId === undefined ? {} : { sub_id: options.subId }), ...options.claims }
      const key = options.key ?? signing
      const set = await new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: 'secevent+jwt', kid: key.kid, ...options.header }).sign(key.privateKey)
      queue.set(jti, set)
      wake?.()
      return jti
    },
    revokeSession(sid, atSec = Math.floor(Date.now() / 1000)) {
      return issuer.deliver({ [SESSION_REVOKED]: { event_timestamp: atSec, initiating_entity: 'user' } }, {
        subId: { format: 'complex', user: { format: 'iss_sub', iss: ISSUER, sub: randomUUID() }, session: { format: 'opaque', id: sid } }
      })
    },
    fetch: async (input, init) => {
      const url = new URL(String(input))
      const method = init?.method ?? 'GET'
      if (url.origin !== ISSUER) throw new TypeError(`fetch failed: ${url.href} is not the fake issuer`)
      switch (`${method} ${url.pathname}`) {
        case 'GET /.well-known/oauth-authorization-server':
          return json(200, { issuer: ISSUER, jwks_uri: `${ISSUER}/jwks`, token_endpoint: `${ISSUER}/token`, introspection_endpoint: `${ISSUER}/introspect`, ...issuer.asMetadata })
        case 'GET /.well-known/ssf-configuration':
          return json(200, { issuer: ISSUER, jwks_uri: `${ISSUER}/jwks`, configuration_endpoint: `${ISSUER}/streams`, delivery_methods_supported: ['urn:ietf:rfc:8936'], ...issuer.ssfMetadata })
        case 'GET /jwks':
          return json(200, { keys: issuer.published.map((key) => key.jwk) })
        case 'POST /token':
          issuer.seen.tokens++
          return json(200, { access_token: `machine-${issuer.seen.tokens}`, token_type: 'Bearer', expires_in: 300 })
        case 'POST /streams':
          issuer.seen.created++
          return json(201, { stream_id: `s${issuer.seen.created}`, delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: `${ISSUER}/poll/s${issuer.seen.created}` }, events_delivered: [SESSION_REVOKED] })
        case 'DELETE /streams':
          issuer.seen.deleted++
          return json(204)
      }
      if (method === 'POST' && url.pathname.startsWith('/poll/')) {
        issuer.seen.polls++
        if (issuer.pollMode === 'fail') throw new TypeError('fetch failed (fake: the stream is down)')
        if (issuer.pollMode === 'unauthorized') {
          issuer.pollMode = 'ok'
          return json(401, { error: 'invalid_token' })
        }
        const body = JSON.parse(String(init?.body ?? '{}')) as { ack?: string[], setErrs?: Record<string, { err: string }>, maxEvents?: number, returnImmediately?: boolean }
        for (const jti of body.ack ?? []) if (queue.delete(jti)) issuer.seen.acked.push(jti)
        for (const [jti, error] of Object.entries(body.setErrs ?? {})) if (queue.delete(jti)) issuer.seen.errors[jti] = error
        if (queue.size === 0 && !body.returnImmediately) {
          // A long poll: answered as soon as something is queued, or empty after 200 ms.
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, 200)
            function done() {
              clearTimeout(timer)
              wake = undefined
              resolve()
            }
            wake = done
            init?.signal?.addEventListener('abort', done)
          })
        }
        const max = body.maxEvents ?? 100
        const sets = Object.fromEntries([...queue].slice(0, max))
        return json(200, { sets, moreAvailable: queue.size > max })
      }
      return json(404, { error: 'not found' })
    }
  }
  return issuer
}
