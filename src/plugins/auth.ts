// Adds the key ring, the token service, `app.authenticate` (the Bearer preHandler) and
// `app.authContext` for the services. https://github.com/fastify/fastify-jwt
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import type { FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import type { AuthContext, Caller, TokenCaller } from '../services/context.js'
import {
  InvalidAccessTokenError,
  MissingBearerTokenError,
  ServiceUnavailableError,
  isDatabaseUnavailable
} from '../services/errors.js'
import { loadKeyRing, type KeyRing } from '../services/keys.js'
import {
  ACCESS_TOKEN_TYP,
  createTokenService,
  isUuid,
  issuedInThePast,
  verifierOptions,
  type AccessTokenClaims,
  type TokenService
} from '../services/tokens.js'
import { VerifiedTokenCache } from '../services/verified-token-cache.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenClaims
    user: TokenCaller
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    keys: KeyRing
    tokens: TokenService
    authContext: AuthContext
    /** onRequest hook: a valid Bearer access token whose session is alive. */
    authenticate: onRequestHookHandler
    /**
     * The same without the session check, for a handler whose own statement settles it
     * (POST /logout of the current session: its DELETE finds the session or the token is refused).
     */
    authenticateToken: onRequestHookHandler
  }
}

export interface AuthPluginOptions {
  config: Config
  now: () => Date
  /** A ready key ring (tests); by default it is loaded from the configuration. */
  keys?: KeyRing
}

const BEARER = /^Bearer +(\S+) *$/i

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), if well formed. */
function bearerToken(request: FastifyRequest): string | undefined {
  return BEARER.exec(request.headers.authorization ?? '')?.[1]
}

export default fp<AuthPluginOptions>(
  async function authPlugin(app, { config, now, keys: givenKeys }) {
    const keys = givenKeys ?? (await loadKeyRing(config.keys, { dataDir: config.dataDir, isProduction: config.isProduction }))
    const tokens = createTokenService(keys, config.tokens, now)

    /** The token's own validity, beyond what the verifier checks; its session is checked afterwards (checkSession). */
    const trusted = (claims: AccessTokenClaims) =>
      isUuid(claims.sid) && isUuid(claims.sub) && issuedInThePast(claims.iat, now(), config.tokens)
    const callerOf = (claims: AccessTokenClaims): TokenCaller => ({ userId: claims.sub, sessionId: claims.sid, tokenExp: claims.exp })

    // Verification only: tokens are signed by services/tokens.ts. The key is picked by `kid` alone.
    await app.register(fastifyJwt, {
      secret: {
        public: async (_request: FastifyRequest, token: TokenOrHeader) => {
          const key = keys.verificationKey('header' in token ? token.header.kid : undefined)
          if (!key) throw new InvalidAccessTokenError()
          return key
        }
      },
      decode: { complete: true },
      verify: {
        ...verifierOptions(keys, config.tokens, ACCESS_TOKEN_TYP),
        extractToken: bearerToken
      },
      trusted: (_request, claims) => trusted(claims as unknown as AccessTokenClaims),
      formatUser: callerOf
    })
    const verifiedTokens = new VerifiedTokenCache(config.tokens.verifiedCacheSize)

    /** The session's liveness when it may take the database: 401 if it is gone, 503 if it cannot be told. */
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
     * RFC 6750 Bearer check as an onRequest hook: 401 for a missing or bad token, 503 if the
     * session's liveness cannot be answered. It answers through `done` when the caches know the
     * token and its session (the gateway's /verify path: no promise at all), and returns a promise
     * to Fastify when it must wait for the database or for @fastify/jwt.
     */
    function bearerCheck(checkLiveness: boolean): onRequestHookHandler {
      /** The session is checked on every request, whatever the token cache says. */
      function accept(request: FastifyRequest, caller: TokenCaller, done: HookHandlerDoneFunction): void | Promise<void> {
        request.user = caller
        if (!checkLiveness) return done()
        const known = app.sessionLiveness.cached(caller.sessionId, caller.userId)
        if (known === undefined) return confirmAlive(caller)
        done(known ? undefined : new InvalidAccessTokenError())
      }

      /** A token of another key or algorithm: full verification by @fastify/jwt. */
      async function verifyElsewhere(request: FastifyRequest, token: string): Promise<void> {
        try {
          await request.jwtVerify()
        } catch (err) {
          throw new InvalidAccessTokenError({ cause: err })
        }
        verifiedTokens.remember(token, request.user)
        if (checkLiveness) await confirmAlive(request.user)
      }

      return function authenticate(request, _reply, done) {
        const token = bearerToken(request)
        if (!token) {
          // A Bearer header with a malformed value was still an attempt at a token (RFC 6750 §3.1).
          const attempted = /^Bearer\s+\S/i.test(request.headers.authorization ?? '')
          return done(attempted ? new InvalidAccessTokenError() : new MissingBearerTokenError())
        }
        // A token verified before skips the decode and signature check (services/verified-token-cache.ts).
        const known = verifiedTokens.lookup(token, now().getTime())
        if (known) return accept(request, known, done)

        // A token the current key signed is checked by signing it again, a third of the cost of
        // verifying (services/own-signature.ts); any other goes through @fastify/jwt.
        let own: AccessTokenClaims | undefined
        try {
          own = tokens.ownAccessTokenClaims(token)
        } catch (err) {
          return done(new InvalidAccessTokenError({ cause: err }))
        }
        if (!own) return verifyElsewhere(request, token)
        if (!trusted(own)) return done(new InvalidAccessTokenError({ cause: new Error('untrusted claims') }))
        const caller = callerOf(own)
        verifiedTokens.remember(token, caller)
        return accept(request, caller, done)
      }
    }

    app.decorate('keys', keys)
    app.decorate('tokens', tokens)
    app.decorate('authenticate', bearerCheck(true))
    app.decorate('authenticateToken', bearerCheck(false))
    app.decorate('authContext', {
      db: app.db,
      tokens,
      settings: config.tokens,
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
