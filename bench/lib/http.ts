// Plain HTTP helpers for setting up and checking the benchmark (never used while measuring):
// register, log in, check tokens. Every request has a timeout.

export const API = '/api/v1/auth'

export interface User {
  readonly email: string
  readonly password: string
  id?: string
}

/** One session as a client holds it: the latest token pair it was given. */
export interface Session {
  readonly userId: string
  readonly sid: string
  access: string
  refresh: string
}

interface TokenPairBody {
  user: { id: string }
  access_token: string
  refresh_token: string
}

/** The `sid` claim of a JWT (not verified: the bench only needs to know which session it is). */
export function sessionIdOf(token: string): string {
  const payload = token.split('.')[1] ?? ''
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sid?: unknown }
  if (typeof claims.sid !== 'string') throw new Error('token without a sid claim')
  return claims.sid
}

/** Parses a token-pair response body into a Session; throws on anything else. */
export function sessionFromTokenPair(body: string): Session {
  const pair = JSON.parse(body) as TokenPairBody
  if (typeof pair.access_token !== 'string' || typeof pair.refresh_token !== 'string') {
    throw new Error('response is not a token pair')
  }
  return { userId: pair.user.id, sid: sessionIdOf(pair.access_token), access: pair.access_token, refresh: pair.refresh_token }
}

export async function postJson(url: string, body: unknown, timeoutMs = 15_000): Promise<{ status: number, text: string }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs)
  })
  return { status: response.status, text: await response.text() }
}

export async function register(baseUrl: string, user: User): Promise<Session> {
  const { status, text } = await postJson(`${baseUrl}${API}/register`, { email: user.email, password: user.password })
  if (status !== 201) throw new Error(`register ${user.email}: ${status} ${text.slice(0, 300)}`)
  const session = sessionFromTokenPair(text)
  user.id = session.userId
  return session
}

export async function login(baseUrl: string, user: User): Promise<Session> {
  const { status, text } = await postJson(`${baseUrl}${API}/login`, { email: user.email, password: user.password })
  if (status !== 200) throw new Error(`login ${user.email}: ${status} ${text.slice(0, 300)}`)
  return sessionFromTokenPair(text)
}

/**
 * A machine token (POST /token, client credentials grant) for the client whose `Authorization:
 * Basic` header this is, with `scope`.
 */
export async function machineToken(baseUrl: string, authorization: string, scope: string, timeoutMs = 15_000): Promise<string> {
  const response = await fetch(`${baseUrl}${API}/token`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }).toString(),
    signal: AbortSignal.timeout(timeoutMs)
  })
  const text = await response.text()
  if (response.status !== 200) throw new Error(`POST /token: ${response.status} ${text.slice(0, 300)}`)
  const token = (JSON.parse(text) as { access_token?: unknown }).access_token
  if (typeof token !== 'string') throw new Error('POST /token: no access_token in the answer')
  return token
}

/** Runs `fn` over `items` with at most `concurrency` in flight; keeps the order of results. */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  async function worker(): Promise<void> {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index], index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return results
}

export interface TokenCheck {
  readonly checked: number
  readonly matching: number
  /** Status code -> count, for the answers that were not the expected one. */
  readonly others: Record<string, number>
}

/** GET /verify with each access token; counts how many answered `expected`. */
export async function checkAccessTokens(baseUrl: string, tokens: readonly string[], expected: number, concurrency = 16): Promise<TokenCheck> {
  let matching = 0
  const others: Record<string, number> = {}
  await mapLimit(tokens, concurrency, async (token) => {
    let status: string
    try {
      const response = await fetch(`${baseUrl}${API}/verify`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(10_000)
      })
      await response.arrayBuffer()
      status = String(response.status)
    } catch (err) {
      status = `error:${(err as Error).name}`
    }
    if (status === String(expected)) matching++
    else others[status] = (others[status] ?? 0) + 1
  })
  return { checked: tokens.length, matching, others }
}
