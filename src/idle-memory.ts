import type { Server } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { FastifyBaseLogger } from 'fastify'

// Gives memory back to the operating system once the instance has served no request for a while.
//
// V8 keeps what start-up and load made it commit: the new space grown to --max-semi-space-size,
// pooled pages of the old space. Nothing collects at rest, so a quiet instance holds its peak
// until traffic comes back (on PostgreSQL about 155-170 MB against about 110 MB after this). A
// browser does this in idle time; Node has no idle-time collection, so this module asks V8 for
// its memory-reducing collection (`flavor: 'last-resort'`, V8 12 and later, i.e. Node 24) once
// per quiet period. Node 20's V8 has no such option (given options, its gc() does not even
// collect), so there it is a plain full collection, after which V8's own memory reducer gives
// the pages back some seconds later, or not at all.
// The pause (tens of milliseconds, docs/operations.md) falls where no request is waiting; a
// health probe or a /metrics scrape does not count as traffic, so regular probes do not keep an
// instance from releasing.

type GC = (options?: { type: 'major', execution: 'sync', flavor: 'last-resort' }) => void

/** V8's gc(), without --expose-gc on the command line and without putting it on globalThis. */
function exposedGc(): GC | null {
  const existing = (globalThis as { gc?: unknown }).gc
  if (typeof existing === 'function') return existing as GC
  try {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as unknown
    setFlagsFromString('--no-expose-gc')
    return typeof gc === 'function' ? (gc as GC) : null
  } catch {
    return null
  }
}

function memoryReducingCollection(): (() => void) | null {
  const gc = exposedGc()
  if (gc === null) return null
  const v8Major = Number(process.versions.v8.split('.')[0])
  return v8Major >= 12 ? () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' }) : () => gc()
}

function isProbe(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith('/health/') || url === '/metrics')
}

export interface IdleMemoryRelease {
  stop(): void
}

export interface IdleMemoryOptions {
  readonly servers: readonly Server[]
  /** MEMORY_RELEASE_IDLE; 0 turns the release off. */
  readonly idleSeconds: number
  readonly log: FastifyBaseLogger
  /** Runs first: what else holds memory it can give back (the password-hashing threads). */
  readonly beforeCollect?: () => Promise<void>
}

/**
 * After `idleSeconds` without a request on any of `servers` (counted from start, and again after
 * each busy spell), runs `beforeCollect`, then one memory-reducing collection.
 */
export function releaseMemoryWhenIdle({ servers, idleSeconds, log, beforeCollect }: IdleMemoryOptions): IdleMemoryRelease {
  const collect = idleSeconds > 0 ? memoryReducingCollection() : null
  if (collect === null) return { stop() {} }

  const release = async (): Promise<void> => {
    const before = process.memoryUsage.rss()
    try {
      await beforeCollect?.()
    } catch (err) {
      log.warn({ err }, 'idle: giving memory back failed')
    }
    const start = Date.now()
    collect()
    log.debug({ rssBefore: before, rssAfter: process.memoryUsage.rss(), ms: Date.now() - start }, 'idle: memory given back')
  }

  let requests = 0
  const countRequest = (req: { url?: string }): void => {
    if (!isProbe(req.url)) requests++
  }
  for (const server of servers) server.on('request', countRequest)

  let seen = 0
  let quietSince = Date.now()
  let released = false
  const idleMs = idleSeconds * 1000
  const timer = setInterval(() => {
    const now = Date.now()
    if (requests !== seen) {
      seen = requests
      quietSince = now
      released = false
      return
    }
    if (released || now - quietSince < idleMs) return
    released = true
    void release()
  }, Math.max(250, Math.min(idleMs / 4, 5000)))
  timer.unref()

  return {
    stop() {
      clearInterval(timer)
      for (const server of servers) server.off('request', countRequest)
    }
  }
}
