// Prometheus metrics (fastify-metrics on prom-client): a latency histogram per route, process
// metrics, and the auth counters in `app.authMetrics`, in `app.metricsRegistry`. Each app has its
// own registry, so several apps in one process (tests) never collide. GET /metrics is added by
// `metricsRoute` on the listener METRICS names (src/app.ts, src/internal.ts).
import type { FastifyInstance, onResponseHookHandler } from 'fastify'
import fastifyMetricsModule from 'fastify-metrics'
import fp from 'fastify-plugin'
import { Counter, Histogram, Registry } from 'prom-client'

// A CommonJS package whose plugin is its `default` export.
const fastifyMetrics = fastifyMetricsModule.default

export interface AuthMetrics {
  /** Audit events by kind: login, login_failed, logout, refresh_reuse, ... (one per ended session). */
  readonly authEvents: Counter<'kind'>
  /** Session revocations heard on the LISTEN/NOTIFY feed (from any instance). */
  readonly revocationNotifications: Counter
  /** Session liveness answers by source: cache or database. */
  readonly livenessChecks: Counter<'source'>
  /** Database queries behind the database's answers: fewer than those when checks went together. */
  readonly livenessQueries: Counter
  /** Requests answered 503 because the database was down or refusing work (never a client's abort). */
  readonly databaseUnavailable: Counter
  /** Logins, registrations and password changes answered 503 because password hashing was at its bound. */
  readonly passwordHashingBusy: Counter
}

declare module 'fastify' {
  interface FastifyInstance {
    authMetrics: AuthMetrics
    /** Every metric of this app; scraped at GET /metrics wherever that is served. */
    metricsRegistry: Registry
  }
}

/**
 * GET /metrics on `app` (the public or the internal listener): Prometheus text from `registry`,
 * or from `collect` (cluster workers: every worker's metrics, aggregated by the primary).
 */
export function metricsRoute(app: FastifyInstance, registry: Registry, collect: () => Promise<string> = () => registry.metrics()): void {
  app.get('/metrics', {
    schema: { hide: true },
    // Scrapes write no request lines below warn (docs/operations.md, "Logs").
    logLevel: 'warn',
    exposeHeadRoute: false,
    handler: async (_request, reply) => reply.type(registry.contentType).send(await collect())
  })
}

export default fp(
  async function metricsPlugin(app) {
    const registry = new Registry()
    await app.register(fastifyMetrics, {
      // No route here: metricsRoute adds it on the listener METRICS names.
      endpoint: null,
      defaultMetrics: { enabled: true, register: registry },
      // Route latency is measured below instead (see routeDurations).
      routeMetrics: { enabled: false }
    })
    routeDurations(app, registry)
    app.decorate('metricsRegistry', registry)

    app.decorate('authMetrics', {
      authEvents: new Counter({
        name: 'auth_events_total',
        help: 'Audit events (login, login_failed, logout, refresh_reuse, revoke, session_deleted, password_changed, register)',
        labelNames: ['kind'],
        registers: [registry]
      }),
      revocationNotifications: new Counter({
        name: 'auth_revocation_notifications_total',
        help: 'Session revocations received through LISTEN/NOTIFY',
        registers: [registry]
      }),
      livenessChecks: new Counter({
        name: 'auth_session_liveness_checks_total',
        help: 'Session liveness answers by source (cache or database)',
        labelNames: ['source'],
        registers: [registry]
      }),
      livenessQueries: new Counter({
        name: 'auth_session_liveness_queries_total',
        help: 'Database queries for session liveness (one answers every check gathered in it)',
        registers: [registry]
      }),
      databaseUnavailable: new Counter({
        name: 'auth_database_unavailable_total',
        help: 'Requests answered 503 because the database was unreachable or refusing work',
        registers: [registry]
      }),
      passwordHashingBusy: new Counter({
        name: 'auth_password_hashing_busy_total',
        help: 'Requests answered 503 because password hashing was at its bound (PASSWORD_HASH_CONCURRENCY, PASSWORD_HASH_QUEUE)',
        registers: [registry]
      })
    } satisfies AuthMetrics)
  },
  { name: 'metrics' }
)

/** Methods fastify-metrics leaves out by default (HEAD duplicates every GET route). */
const UNTIMED_METHODS = new Set(['HEAD', 'OPTIONS', 'TRACE', 'CONNECT'])

/**
 * `http_request_duration_seconds{method,route,status_code}`, the histogram fastify-metrics
 * would keep, from Fastify's own `reply.elapsedTime`. fastify-metrics' route timers keep each
 * request's timer in a WeakMap, which every young-generation collection must walk under load.
 * Here each route gets its own onResponse hook, built once, and a
 * request costs two map lookups and one observation.
 */
function routeDurations(app: FastifyInstance, registry: Registry): void {
  const histogram = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'request duration in seconds',
    labelNames: ['method', 'route', 'status_code'],
    registers: [registry]
  })
  app.addHook('onRoute', (route) => {
    if (route.url === '/metrics') return
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((method) => !UNTIMED_METHODS.has(method))
    if (methods.length === 0) return
    // method -> status code -> the histogram's child for those labels, made on first use
    const observers = new Map<string, Map<number, Histogram.Internal<'method' | 'route' | 'status_code'>>>()
    const timed: onResponseHookHandler = (request, reply, done) => {
      const method = request.method
      // A HEAD route Fastify derives from a GET route inherits this hook.
      if (!methods.includes(method)) return done()
      let byStatus = observers.get(method)
      if (byStatus === undefined) observers.set(method, (byStatus = new Map()))
      let observer = byStatus.get(reply.statusCode)
      if (observer === undefined) {
        observer = histogram.labels({ method, route: route.url, status_code: reply.statusCode })
        byStatus.set(reply.statusCode, observer)
      }
      observer.observe(reply.elapsedTime / 1000)
      done()
    }
    route.onResponse = [...toArray(route.onResponse), timed]
  })
}

function toArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}
