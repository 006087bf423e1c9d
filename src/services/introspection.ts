// RFC 7662 token introspection (docs/api.md, "POST /introspect"): is this user token live right
// now? Access tokens take the path of GET /verify (the verified-token cache, then the session's
// liveness, from memory when it is known), so a known answer costs no database round trip. A
// refresh token is live only while it is its session's current one.
import { TokenRejectedError, type AccessTokenClaims, type RefreshTokenClaims } from '../auth/claims.js'
import type { TokenIssuer } from '../auth/token-issuer.js'
import type { TokenVerifier } from '../auth/token-verifier.js'
import type { SessionLiveness } from '../plugins/liveness.js'
import { isCurrentRefreshJti } from '../repositories/sessions.js'
import type { Executor } from '../repositories/executor.js'
import type { IntrospectionResponse } from '../../schemas/oauth.js'

export interface IntrospectionContext {
  readonly db: Executor
  readonly verifier: TokenVerifier
  readonly tokens: TokenIssuer
  readonly liveness: SessionLiveness
  readonly now: () => Date
  /** The `client_id` of the service's own user tokens (JWT_CLIENT_ID), for refresh tokens. */
  readonly clientId: string
}

type Hint = 'access_token' | 'refresh_token'

const INACTIVE: IntrospectionResponse = Object.freeze({ active: false })

/** The claims if `token` is a genuine token of `kind`; undefined for any other string. */
function verified<K extends 'access' | 'refresh'>(ctx: IntrospectionContext, token: string, kind: K) {
  try {
    return ctx.verifier.verify(token, kind)
  } catch (err) {
    if (err instanceof TokenRejectedError) return undefined
    throw err
  }
}

function activeResponse(claims: AccessTokenClaims | RefreshTokenClaims, tokenType: Hint, clientId: string): IntrospectionResponse {
  return {
    active: true,
    token_type: tokenType,
    sub: claims.sub,
    sid: claims.sid,
    client_id: clientId,
    iss: claims.iss,
    aud: claims.aud,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti
  }
}

async function introspectAccess(ctx: IntrospectionContext, token: string): Promise<IntrospectionResponse | undefined> {
  const claims = verified(ctx, token, 'access')
  if (!claims) return undefined
  const live = ctx.liveness.cached(claims.sid, claims.sub) ?? (await ctx.liveness.isLive(claims.sid, claims.sub))
  return live ? activeResponse(claims, 'access_token', claims.client_id) : INACTIVE
}

async function introspectRefresh(ctx: IntrospectionContext, token: string): Promise<IntrospectionResponse | undefined> {
  const claims = verified(ctx, token, 'refresh')
  if (!claims) return undefined
  const current = await isCurrentRefreshJti(ctx.db, claims.sid, claims.sub, ctx.tokens.hashJti(claims.jti), ctx.now())
  return current ? activeResponse(claims, 'refresh_token', ctx.clientId) : INACTIVE
}

/**
 * `{ active: false }` for anything not live: forged, expired, another issuer's, a machine token
 * (its audience is this service, not an API), a token of an ended session, a rotated-away
 * refresh token. The hint only says which kind to try first (RFC 7662 §2.1). Throws only when
 * the database cannot answer (a 503: the caller must not take silence for "inactive").
 */
export async function introspect(ctx: IntrospectionContext, token: string, hint?: string): Promise<IntrospectionResponse> {
  const order = hint === 'refresh_token' ? [introspectRefresh, introspectAccess] : [introspectAccess, introspectRefresh]
  for (const attempt of order) {
    const answer = await attempt(ctx, token)
    if (answer) return answer
  }
  return INACTIVE
}
