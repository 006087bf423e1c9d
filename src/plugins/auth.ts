// Adds token verification to the app: @fastify/jwt, registered once per key of the ring, is the
// full signature check of the one TokenVerifier (src/auth/token-verifier.ts); plus the token
// issuer, the Bearer hooks and `app.authContext` for the services.
// https://github.com/fastify/fastify-jwt
import fastifyJwt, { type JWT } from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { TokenRejectedError, type RefreshTokenClaims, type TokenSettings } from '../auth/claims.js'
import { loadKeyRing, type KeyMaterial, type KeyRing, type KeyRingOptions } from '../auth/keys.js'
import { createTokenIssuer, type TokenIssuer } from '../auth/token-issuer.js'
import { createTokenVerifier, type SignatureVerifier, type TokenVerifier } from '../auth/token-verifier.js'
import { isDatabaseUnavailable } from '../db/errors.js'
import type { AuthContext, Caller, SessionSettings } from '../services/context.js'
import { PasswordHasher, type PasswordHashingLimits } from '../services/passwords.js'
import { InvalidAccessTokenError, MissingBearerTokenError, ServiceUnavailableError } from './http-errors.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    user: Caller
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    keys: KeyRing
    tokens: TokenIssuer
    tokenVerifier: TokenVerifier
    authContext: AuthContext
    /** onRequest hook: a valid Bearer access token of a live session. */
    authenticateSession: onRequestHookHandler
    /**
     * onRequest hook: a valid Bearer access token, its session unchecked, for a handler whose own
     * statement settles that (POST /logout of the current session: its DELETE finds the session
     * or the token is refused).
     */
    authenticateToken: onRequestHookHandler
    /**
     * The claims of the refresh token `token` of this request, or undefined if it is not a
     * genuine one: verified on the first call, remembered for the rest of the request (the rate
     * limiter and the handler both ask).
     */
    refreshTokenOf: (request: FastifyRequest, token: string) => RefreshTokenClaims | undefined
  }
  interface FastifyRequest {
    refreshTokenVerdict: RefreshTokenClaims | null | undefined
  }
}

export interface AuthPluginOptions {
  keyMaterial: KeyMaterial
  keyRingOptions: KeyRingOptions
  tokenSettings: TokenSettings
  sessionSettings: SessionSettings
  passwordHashing: PasswordHashingLimits
  /** TOKEN_CACHE_SIZE: access tokens remembered once verified. */
  verifiedCacheSize: number
  now: () => Date
  /** A ready key ring (tests); by default it is loaded from the key material. */
  keys?: KeyRing
}

const BEARER = /^Bearer +(\S+) *$/i
const ATTEMPTED_BEARER = /^Bearer\s+\S/i

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), if well formed. */
export function bearerToken(request: FastifyRequest): string | undefined {
  return BEARER.exec(request.headers.authorization ?? '')?.[1]
}

/** The error for a request without a well-formed Bearer token (RFC 6750 §3.1). */
export function bearerMissingError(request: FastifyRequest): Error {
  // A Bearer header with a malformed value was still an attempt at a token.
  return ATTEMPTED_BEARER.test(request.headers.authorization ?? '') ? new InvalidAccessTokenError() : new MissingBearerTokenError()
}

/**
 * @fastify/jwt verifies signatures only: time and every other claim are the claim rules' (on the
 * service's clock), and tokens are cached by the TokenVerifier. One registration per key (its
 * namespace), so each has a verifier built once with its key, the PEM parsed once.
 */
export async function signatureVerifiers(app: FastifyInstance, keys: KeyRing): Promise<Map<string, SignatureVerifier>> {
  const byKid = new Map<string, SignatureVerifier>()
  for (const [index, { kid, key }] of keys.verificationKeys.entries()) {
    const namespace = `key${index}`
    await app.register(fastifyJwt, {
      namespace,
      secret: { public: key },
      verify: { algorithms: [keys.algorithm], complete: true, ignoreExpiration: true, ignoreNotBefore: true, cache: false }
    })
    const jwt = (app.jwt as unknown as Record<string, JWT>)[namespace]
    byKid.set(kid, (token) => jwt.verify(token))
  }
  return byKid
}

export default fp<AuthPluginOptions>(
  async function authPlugin(app, options) {
    const { now } = options
    const keys = options.keys ?? (await loadKeyRing(options.keyMaterial, options.keyRingOptions))
    const verifiers = await signatureVerifiers(app, keys)
    const verifier = createTokenVerifier({
      keys,
      settings: options.tokenSettings,
      now,
      cacheSize: options.verifiedCacheSize,
      signatureVerifier: (kid) => verifiers.get(kid)
    })
    const tokens = createTokenIssuer(keys, options.tokenSettings)

    /** The session's liveness from the database: 401 if it is gone, 503 if it cannot be told. */
    async function confirmAlive(caller: Caller): Promise<void> {
      let live: boolean
      try {
        live = await app.sessionLiveness.isLive(caller.sessionId, caller.userId)
      } catch (err) {
        if (isDatabaseUnavailable(err)) throw new ServiceUnavailableError({ cause: err })
        throw new InvalidAccessTokenError({ cause: err })
      }
      if (!live) throw new InvalidAccessTokenError()
    }

    /**
     * RFC 6750 Bearer check as a callback hook: 401 for a missing or bad token, 503 if the
     * session's liveness cannot be told. When the caches know the token and its session (the
     * gateway's /verify path) it answers without a promise; otherwise it waits for the database.
     */
    function bearerCheck(checkSession: boolean): onRequestHookHandler {
      return function authenticate(request, _reply, done) {
        const token = bearerToken(request)
        if (!token) return done(bearerMissingError(request))
        let caller: Caller
        try {
          const claims = verifier.verify(token, 'access')
          caller = { userId: claims.sub, sessionId: claims.sid }
        } catch (err) {
          return done(err instanceof TokenRejectedError ? new InvalidAccessTokenError({ cause: err }) : (err as Error))
        }
        request.user = caller
        if (!checkSession) return done()
        // The session is checked on every request, whatever the token cache says.
        const known = app.sessionLiveness.cached(caller.sessionId, caller.userId)
        if (known !== undefined) return done(known ? undefined : new InvalidAccessTokenError())
        confirmAlive(caller).then(() => done(), done)
      }
    }

    app.decorateRequest('refreshTokenVerdict', undefined)
    app.decorate('refreshTokenOf', (request: FastifyRequest, token: string) => {
      if (request.refreshTokenVerdict === undefined) {
        try {
          request.refreshTokenVerdict = verifier.verify(token, 'refresh')
        } catch (err) {
          if (!(err instanceof TokenRejectedError)) throw err
          request.refreshTokenVerdict = null
        }
      }
      return request.refreshTokenVerdict ?? undefined
    })

    app.decorate('keys', keys)
    app.decorate('tokens', tokens)
    app.decorate('tokenVerifier', verifier)
    app.decorate('authenticateSession', bearerCheck(true))
    app.decorate('authenticateToken', bearerCheck(false))
    const passwords = new PasswordHasher(options.passwordHashing, (message) => app.log.warn(message))
    app.addHook('onClose', () => passwords.close())
    app.decorate('authContext', {
      db: app.db,
      tokens,
      verifier,
      settings: options.sessionSettings,
      passwords,
      now,
      sessionsEnded: (sessionIds, event) => {
        app.sessionLiveness.forget(sessionIds)
        if (sessionIds.length > 0) app.auditLog.recorded(event, sessionIds)
      },
      recorded: (event) => app.auditLog.recorded(event)
    } satisfies AuthContext)
  },
  { name: 'auth', dependencies: ['db', 'liveness', 'audit'] }
)
