// Adds the key ring, the token service, `app.authenticate` (the Bearer preHandler) and
// `app.authContext` for the services. https://github.com/fastify/fastify-jwt
import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import type { AuthContext, Caller } from '../services/context.js'
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

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenClaims
    user: Caller
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The handler checks the caller's session itself (see `trusted` below). */
    livenessCheckedByHandler?: boolean
  }
  interface FastifyInstance {
    keys: KeyRing
    tokens: TokenService
    authContext: AuthContext
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
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

    // Verification only: tokens are signed by services/tokens.ts. The key is picked by `kid`
    // alone; `trusted` is the session liveness check, so a revoked session's tokens fail here.
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
        extractToken: bearerToken,
        // fast-jwt's verified-token cache (keyed by a hash of the whole token, bounded, never past
        // `exp`): a token seen before skips the signature check. Safe because revocation is not a
        // property of the token: `trusted` below checks the session on every request.
        ...(config.tokens.verifiedCacheSize > 0 ? { cache: config.tokens.verifiedCacheSize } : {})
      },
      trusted: (request, claims) => {
        const { sid, sub, iat } = claims as unknown as AccessTokenClaims
        if (!isUuid(sid) || !isUuid(sub) || !issuedInThePast(iat, now(), config.tokens)) return false
        // A route that settles liveness itself, in the statement that acts on the session
        // (POST /logout of the current session: the DELETE finds it or the token is refused).
        if (request.routeOptions.config.livenessCheckedByHandler === true) return true
        return app.sessionLiveness.isLive(sid, sub)
      },
      formatUser: (claims) => ({ userId: claims.sub, sessionId: claims.sid })
    })

    /** RFC 6750 Bearer check: 401 for a missing or bad token, 503 if liveness cannot be answered. */
    async function authenticate(request: FastifyRequest): Promise<void> {
      if (!bearerToken(request)) {
        // A Bearer header with a malformed value was still an attempt at a token (RFC 6750 §3.1).
        const attempted = /^Bearer\s+\S/i.test(request.headers.authorization ?? '')
        throw attempted ? new InvalidAccessTokenError() : new MissingBearerTokenError()
      }
      try {
        await request.jwtVerify()
      } catch (err) {
        if (isDatabaseUnavailable(err)) throw new ServiceUnavailableError({ cause: err })
        throw new InvalidAccessTokenError({ cause: err })
      }
    }

    app.decorate('keys', keys)
    app.decorate('tokens', tokens)
    app.decorate('authenticate', authenticate)
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
