// The internal listener (docs/security.md, "Internal endpoints and headers"): a second Fastify
// instance, on INTERNAL_HOST:INTERNAL_PORT, for what must not be on the public port: GET /metrics
// when METRICS=internal, GET /docs and /docs/json when DOCS=internal. It serves the public app's
// registry and OpenAPI document; it has no database, no auth and no rate limit of its own.
// src/server.ts starts it after the public listener; closing the public app closes it.
import cluster from 'node:cluster'
import Fastify, { type FastifyInstance } from 'fastify'
import { clusterCollector } from './cluster-metrics.js'
import type { Config } from './config.js'
import { requestIdOf, requestLogger } from './logging.js'
import errorsPlugin from './plugins/errors.js'
import { metricsRoute } from './plugins/metrics.js'
import securityHeadersPlugin from './plugins/security-headers.js'
import { docsRoutes } from './plugins/swagger.js'

/** The internal app for `publicApp`, or null when nothing is configured `internal`. */
export async function buildInternalApp(config: Config, publicApp: FastifyInstance): Promise<FastifyInstance | null> {
  if (config.metrics !== 'internal' && config.docs !== 'internal') return null
  const internal = Fastify({
    loggerInstance: publicApp.log.child({ listener: 'internal' }),
    requestIdHeader: false,
    genReqId: requestIdOf,
    childLoggerFactory: requestLogger,
    requestTimeout: 30_000
  })
  // The document describes the public app's routes: it must have booted first.
  internal.addHook('onReady', async () => {
    await publicApp.ready()
  })
  internal.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
  await internal.register(errorsPlugin)
  await internal.register(securityHeadersPlugin)
  if (config.metrics === 'internal') {
    const registry = publicApp.metricsRegistry
    metricsRoute(internal, registry, cluster.isWorker ? clusterCollector(registry) : undefined)
  }
  if (config.docs === 'internal') await docsRoutes(internal, publicApp)
  return internal
}
