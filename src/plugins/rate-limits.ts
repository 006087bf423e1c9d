// Adds `app.limitRequests(group, accountKey?)`: the preHandler hooks that rate-limit a route per
// client IP and per account (@fastify/rate-limit). Over the limit: 429 with Retry-After.
//
// The counters live in each instance's memory (bounded LRU), so N instances allow up to N times
// the configured rate in total; a gateway in front can enforce a global limit. request.ip honours
// TRUST_PROXY, so behind a proxy the client's address is counted, not the proxy's.
import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { TooManyRequestsError } from './http-errors.js'

export interface RateLimitsOptions {
  enabled: boolean
  /** Requests per window from one IP address, per route group. */
  ipMax: number
  /** Requests per window for one account (email, user or session), per route group. */
  accountMax: number
  /** Window length in seconds. */
  windowSeconds: number
}

/** Which account a request is about; undefined when it cannot be told (then the IP limit alone applies). */
export type AccountKey = (request: FastifyRequest) => string | undefined | Promise<string | undefined>

declare module 'fastify' {
  interface FastifyInstance {
    limitRequests: (group: string, accountKey?: AccountKey) => preHandlerAsyncHookHandler[]
  }
}

export default fp<RateLimitsOptions>(
  async function rateLimitsPlugin(app, options) {
    if (!options.enabled) {
      app.decorate('limitRequests', () => [])
      return
    }
    await app.register(rateLimit, {
      global: false,
      // Distinct keys remembered at once (least recently used dropped): bounded memory.
      cache: 100_000,
      timeWindow: options.windowSeconds * 1000
    })

    app.decorate('limitRequests', (group: string, accountKey?: AccountKey) => {
      // Two counters per request (createRateLimit: the plugin's route hooks run only once per request).
      const checkIp = app.createRateLimit({ max: options.ipMax, keyGenerator: (request) => `${group}:ip:${request.ip}` })
      const checkAccount = app.createRateLimit({
        max: options.accountMax,
        keyGenerator: async (request) => {
          const account = accountKey ? await accountKey(request) : undefined
          // Requests we cannot attribute share one bucket per IP under this group.
          return account === undefined ? `${group}:anonymous:${request.ip}` : `${group}:account:${account}`
        }
      })
      async function limit(request: FastifyRequest, reply: FastifyReply): Promise<void> {
        for (const check of accountKey ? [checkIp, checkAccount] : [checkIp]) {
          const status = await check(request)
          if (!status.isAllowed && status.isExceeded) {
            reply.header('retry-after', String(Math.max(1, status.ttlInSeconds)))
            throw new TooManyRequestsError()
          }
        }
      }
      return [limit]
    })
  },
  { name: 'rate-limits' }
)
