// Prometheus metrics at GET /metrics (fastify-metrics on prom-client): request counts and a
// latency histogram per route, process metrics, and the auth counters in `app.authMetrics`.
// Each app has its own registry, so several apps in one process (tests) never collide.
import fastifyMetricsModule from 'fastify-metrics'
import fp from 'fastify-plugin'
import { Counter, Registry } from 'prom-client'

// A CommonJS package whose plugin is its `default` export.
const fastifyMetrics = fastifyMetricsModule.default

export interface AuthMetrics {
  /** Audit events by kind: login, login_failed, logout, refresh_reuse, ... (one per ended session). */
  readonly authEvents: Counter<'kind'>
  /** Session revocations heard on the LISTEN/NOTIFY feed (from any instance). */
  readonly revocationNotifications: Counter
  /** Session liveness answers by source: cache or database. */
  readonly livenessChecks: Counter<'source'>
}

declare module 'fastify' {
  interface FastifyInstance {
    authMetrics: AuthMetrics
  }
}

export default fp(
  async function metricsPlugin(app) {
    const registry = new Registry()
    await app.register(fastifyMetrics, {
      endpoint: { url: '/metrics', method: 'GET', schema: { hide: true }, logLevel: 'warn', handler: () => {} },
      defaultMetrics: { enabled: true, register: registry },
      routeMetrics: {
        // The summary computes quantiles on every request; the histogram is enough for Prometheus.
        enabled: { histogram: true, summary: false },
        routeBlacklist: ['/metrics'],
        // The plugin creates the summary even when it is off: keep it out of the global registry.
        overrides: { histogram: { registers: [registry] }, summary: { registers: [registry] } }
      }
    })

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
      })
    } satisfies AuthMetrics)
  },
  { name: 'metrics' }
)
