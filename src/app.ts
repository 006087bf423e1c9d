import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyServerOptions } from 'fastify'
import { TokenPairSchema, UserSchema } from '../schemas/auth.js'
import { ErrorResponseSchema } from '../schemas/common.js'
import { SessionSchema } from '../schemas/sessions.js'
import type { Config } from './config.js'
import { loggerOptions, requestIdOf, requestLogger } from './logging.js'
import { pgliteDirFor } from './db/database.js'
import auditPlugin from './plugins/audit.js'
import authPlugin from './plugins/auth.js'
import dbPlugin from './plugins/db.js'
import errorsPlugin, { frameworkErrorHandler } from './plugins/errors.js'
import livenessPlugin from './plugins/liveness.js'
import contentEncodingPlugin from './plugins/content-encoding.js'
import metricsPlugin, { metricsRoute } from './plugins/metrics.js'
import rateLimitsPlugin from './plugins/rate-limits.js'
import { databaseStore } from './plugins/rate-limit-stores.js'
import housekeepingPlugin from './plugins/housekeeping.js'
import recoveryPlugin from './plugins/recovery.js'
import securityHeadersPlugin from './plugins/security-headers.js'
import swaggerPlugin, { docsRoutes } from './plugins/swagger.js'
import { buildInternalApp } from './internal.js'
import authRoutes from './routes/auth.js'
import healthRoutes from './routes/health.js'
import logoutRoutes from './routes/logout.js'
import meRoutes from './routes/me.js'
import sessionRoutes from './routes/sessions.js'
import verifyRoutes from './routes/verify.js'
import wellKnownRoutes from './routes/well-known.js'
import adminRoutes from './routes/admin.js'
import oauthRoutes from './routes/oauth.js'
import recoveryRoutes from './routes/recovery.js'
import serviceClientsPlugin from './plugins/service-clients.js'
import ssfPlugin from './ssf/plugin.js'
import ssfRoutes from './routes/ssf.js'
import { loadServiceClients, type ServiceClients } from './auth/service-clients.js'
import type { KeyRing } from './auth/keys.js'

export const API_PREFIX = '/api/v1/auth'

export interface BuildOptions {
  /** The clock every service reads (tests move it instead of sleeping). */
  now?: () => Date
  /** A ready key ring instead of loading keys from the configuration (tests). */
  keys?: KeyRing
  /** PGlite directory, e.g. `memory://` in tests; default DATA_DIR/pglite. */
  pgliteDir?: string
  /** Apply migrations at start-up (default: on PGlite only). */
  migrate?: boolean
  /** Machine clients instead of reading SERVICE_CLIENTS_FILE (tests). */
  serviceClients?: ServiceClients
  logger?: FastifyServerOptions['logger']
}

export async function buildApp(config: Config, options: BuildOptions = {}) {
  const now = options.now ?? (() => new Date())
  // Read before anything opens: a bad clients file stops the start with one line (src/server.ts).
  const serviceClients = options.serviceClients ?? (await loadServiceClients(config.serviceClientsFile))
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config),
    bodyLimit: config.bodyLimit,
    // Fastify also takes a hop count here, which its typings leave out.
    trustProxy: config.trustProxy as FastifyServerOptions['trustProxy'],
    requestIdHeader: false,
    frameworkErrors: frameworkErrorHandler,
    genReqId: requestIdOf,
    childLoggerFactory: requestLogger,
    requestTimeout: 30_000,
    // Opening the embedded database and migrating it can take several seconds on a busy machine.
    pluginTimeout: 30_000,
    // Behind a load balancer, outlive its idle timeout so it never reuses a closed socket.
    keepAliveTimeout: 72_000,
    ajv: {
      // Contract: "true" is not a boolean and unknown properties are a 400, not silently dropped.
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false }
    }
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Callback-style hooks: they run on every request, and an async one costs a promise each time.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
  // Graceful shutdown behind a balancer (docs/gateway.md): on close Fastify answers new requests
  // 503 and Node closes the connections idle at that moment, but a connection whose request was
  // in progress would stay open after its answer until the client closes it (nginx keeps its
  // upstream connections 60 s), and close-with-grace would kill the process after its 10 s. So
  // every answer sent once closing has begun says Connection: close, and its connection ends with it.
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
  // Contract: a body that is not application/json is 415. Fastify also parses text/plain by
  // default, which would turn such a body into a 400; this API takes JSON only.
  app.removeContentTypeParser('text/plain')
  for (const schema of [ErrorResponseSchema, UserSchema, TokenPairSchema, SessionSchema]) app.addSchema(schema)

  await app.register(errorsPlugin)
  await app.register(securityHeadersPlugin)
  await app.register(contentEncodingPlugin)
  await app.register(dbPlugin, {
    databaseUrl: config.databaseUrl,
    listenUrl: config.databaseListenUrl,
    preparedStatements: config.preparedStatements,
    pgliteDir: options.pgliteDir ?? pgliteDirFor(config.dataDir),
    poolSize: config.pgPoolSize,
    migrate: options.migrate
  })
  await app.register(metricsPlugin)
  await app.register(auditPlugin)
  await app.register(livenessPlugin, {
    now,
    cacheSize: config.sessions.cacheSize,
    cacheTtl: config.sessions.cacheTtl,
    // A quarter of the pool on PostgreSQL, so logins and refreshes always find connections.
    lookupConcurrency: config.databaseUrl ? Math.max(1, Math.floor(config.pgPoolSize / 4)) : 1
  })
  await app.register(housekeepingPlugin, {
    now,
    intervalSeconds: config.sessions.cleanupInterval,
    auditRetentionSeconds: config.auditRetention,
    securityEventRetentionSeconds: config.ssfEventRetention,
    ssfStreamIdleSeconds: config.ssf.streamIdleTtl
  })
  await app.register(authPlugin, {
    keyMaterial: config.keys,
    keyRingOptions: { dataDir: config.dataDir, isProduction: config.isProduction },
    tokenSettings: config.tokens,
    sessionSettings: { ...config.tokens, requireVerifiedEmail: config.recovery.requireVerifiedEmail },
    passwordHashing: config.passwordHashing,
    verifiedCacheSize: config.tokens.verifiedCacheSize,
    now,
    keys: options.keys
  })
  await app.register(serviceClientsPlugin, { clients: serviceClients })
  await app.register(ssfPlugin, {
    now,
    settings: {
      issuer: config.tokens.issuer,
      publicUrl: config.publicUrl,
      apiPrefix: API_PREFIX,
      pollTimeoutSeconds: config.ssf.pollTimeout,
      streamIdleTtlSeconds: config.ssf.streamIdleTtl,
      pushAllowedOrigins: config.ssf.pushAllowedOrigins,
      maxStreamsPerClient: config.ssf.maxStreamsPerClient,
      backfillSeconds: config.tokens.accessTtl + config.tokens.clockTolerance,
      // Half the pool on PostgreSQL; PGlite runs one query at a time, so one poll's at a time.
      pollQueryConcurrency: config.databaseUrl ? Math.max(1, Math.floor(config.pgPoolSize / 2)) : 1
    }
  })
  await app.register(rateLimitsPlugin, {
    enabled: config.rateLimit.enabled,
    ipMax: config.rateLimit.ipMax,
    accountMax: config.rateLimit.accountMax,
    accountCeiling: config.rateLimit.accountCeiling,
    slowdownMaxSeconds: config.rateLimit.slowdownMax,
    windowSeconds: config.rateLimit.window,
    now,
    // One count for every instance: in the database they share, or in Redis.
    ...(config.rateLimit.redisUrl ? { redisUrl: config.rateLimit.redisUrl } : { store: databaseStore(app.db, now) })
  })
  // Password reset and email verification by mail (RECOVERY; docs/recovery.md).
  if (config.recovery.enabled) await app.register(recoveryPlugin, { settings: config.recovery, now })
  await app.register(swaggerPlugin)
  // GET /metrics and /docs on this listener, the internal one (app.internal) or nowhere.
  if (config.metrics === 'public') metricsRoute(app, app.metricsRegistry)
  if (config.docs === 'public') await docsRoutes(app, app)

  await app.register(async function authApi(api) {
    // Nothing an auth API answers may be cached by a browser or proxy (tokens, profiles, errors).
    api.addHook('onRequest', (_request, reply, done) => {
      reply.header('cache-control', 'no-store')
      done()
    })
    await api.register(authRoutes)
    await api.register(logoutRoutes)
    await api.register(meRoutes)
    await api.register(sessionRoutes)
    await api.register(verifyRoutes)
    if (config.recovery.enabled) await api.register(recoveryRoutes)
    await api.register(oauthRoutes, { userTokensClientId: config.tokens.clientId })
    await api.register(adminRoutes, { prefix: '/admin' })
    await api.register(ssfRoutes, { prefix: '/ssf' })
  }, { prefix: API_PREFIX })
  await app.register(wellKnownRoutes, {
    publicUrl: config.publicUrl,
    issuer: config.tokens.issuer,
    apiPrefix: API_PREFIX,
    pushEnabled: config.ssf.pushAllowedOrigins.length > 0
  })
  await app.register(healthRoutes)

  const internal = await buildInternalApp(config, app)
  // The internal listener's app (src/internal.ts), or null: src/server.ts listens on it, tests inject.
  app.decorate('internal', internal)
  if (internal) app.addHook('onClose', async () => { await internal.close() })

  return app
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The internal listener's app: /metrics and /docs when configured `internal`; else null. */
    internal: FastifyInstance | null
  }
}

export type App = Awaited<ReturnType<typeof buildApp>>
