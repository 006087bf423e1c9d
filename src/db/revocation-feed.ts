// How an instance learns that sessions were deleted anywhere: the `user_sessions` delete
// trigger (migrations/…_notify_session_revoked.ts) sends the session id on the
// `auth_session_revoked` channel when the deleting transaction commits.
import { randomUUID } from 'node:crypto'
import type { PGlite } from '@electric-sql/pglite'
import pg from 'pg'

export const REVOKED_CHANNEL = 'auth_session_revoked'
/** Every insert into security_events or ssf_verifications (docs/ssf.md): wakes the long polls. */
export const SECURITY_EVENT_CHANNEL = 'auth_security_event'
const HEARTBEAT_CHANNEL = 'auth_listener_heartbeat'

export interface RevocationFeed {
  /**
   * True while revocations are known to arrive: connected, listening, and the last heartbeat came
   * back recently. Only then may an instance answer liveness from memory.
   */
  readonly healthy: boolean
  close(): Promise<void>
}

export interface FeedHandlers {
  /** A session was deleted (possibly by another instance). */
  readonly onRevoked: (sessionId: string) => void
  /** (Re)connected: notifications sent while disconnected are lost, so forget what was cached. */
  readonly onReset: () => void
  readonly onError?: (err: unknown, retryInMs: number) => void
  /** Security events were recorded (possibly by another instance); no payload. */
  readonly onSecurityEvent?: () => void
}

/** The embedded engine: LISTEN/NOTIFY works inside this process, which is the only one. */
export async function listenOnPglite(pglite: PGlite, handlers: FeedHandlers): Promise<RevocationFeed> {
  const unlisten = await pglite.listen(REVOKED_CHANNEL, handlers.onRevoked)
  const onSecurityEvent = handlers.onSecurityEvent
  const unlistenEvents = onSecurityEvent ? await pglite.listen(SECURITY_EVENT_CHANNEL, () => onSecurityEvent()) : undefined
  return {
    get healthy() {
      return !pglite.closed
    },
    close: async () => {
      if (pglite.closed) return
      await unlisten()
      await unlistenEvents?.()
    }
  }
}

export function listenerApplicationName(pid: number): string {
  return `auth-service-listener/${pid}`
}

export interface PostgresFeedOptions {
  readonly connectionString: string
  /** How often the listener sends itself a heartbeat through the server. */
  readonly heartbeatMs?: number
  /** How old the last heartbeat may be for the feed to count as healthy. */
  readonly staleAfterMs?: number
  readonly maxBackoffMs?: number
}

/**
 * PostgreSQL: one dedicated connection (not from the pool: a pooled connection may be handed
 * back and its LISTEN lost) that LISTENs, sends itself a heartbeat NOTIFY every couple of
 * seconds to prove the path works end to end, and reconnects with exponential back-off and
 * jitter when the connection drops (restart, failover, pg_terminate_backend).
 */
export function listenOnPostgres(options: PostgresFeedOptions, handlers: FeedHandlers): RevocationFeed {
  const heartbeatMs = options.heartbeatMs ?? 2_000
  const staleAfterMs = options.staleAfterMs ?? 5_000
  const maxBackoffMs = options.maxBackoffMs ?? 10_000
  const instanceToken = randomUUID()

  let client: pg.Client | undefined
  let listening = false
  let lastHeartbeatAt = 0
  let failures = 0
  let closed = false
  let reconnectTimer: NodeJS.Timeout | undefined

  function onNotification(message: pg.Notification): void {
    if (message.channel === REVOKED_CHANNEL && message.payload) handlers.onRevoked(message.payload)
    else if (message.channel === SECURITY_EVENT_CHANNEL) handlers.onSecurityEvent?.()
    else if (message.channel === HEARTBEAT_CHANNEL && message.payload === instanceToken) lastHeartbeatAt = Date.now()
  }

  /** Stops using the current client; resolves once it is closed. */
  function release(): Promise<void> {
    const released = client
    client = undefined
    listening = false
    if (!released) return Promise.resolve()
    released.removeAllListeners('notification')
    released.on('error', () => {}) // late socket errors of a client we gave up on
    return released.end().catch(() => {})
  }

  function dropConnection(err: unknown): void {
    if (!client) return
    void release()
    scheduleReconnect(err)
  }

  function scheduleReconnect(err: unknown): void {
    if (closed || reconnectTimer) return
    failures += 1
    const ceiling = Math.min(maxBackoffMs, 100 * 2 ** Math.min(failures, 10))
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2))
    handlers.onError?.(err, delay)
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined
      void connect()
    }, delay)
    reconnectTimer.unref()
  }

  async function connect(): Promise<void> {
    if (closed) return
    const next = new pg.Client({
      connectionString: options.connectionString,
      // Which instance this is, in pg_stat_activity (and for tests that cut this connection).
      application_name: listenerApplicationName(process.pid),
      // pg sets TCP_NODELAY on the socket itself. Nothing here holds a notification back: from the
      // socket's data to the cache updated takes about 0.05 ms; the rest of the propagation
      // window is the scheduling of PostgreSQL's listener backend and of this process
      // (docs/revocation.md, "How fast"; test/revocation/propagation-window.test.ts measures it).
      keepAlive: true,
      connectionTimeoutMillis: 5_000
    })
    client = next
    next.on('notification', onNotification)
    next.on('error', (err) => {
      if (client === next) dropConnection(err)
    })
    next.on('end', () => {
      if (client === next) dropConnection(new Error('listener connection ended'))
    })
    try {
      await next.connect()
      await next.query(`LISTEN ${REVOKED_CHANNEL}`)
      await next.query(`LISTEN ${HEARTBEAT_CHANNEL}`)
      if (handlers.onSecurityEvent) await next.query(`LISTEN ${SECURITY_EVENT_CHANNEL}`)
      if (client !== next || closed) return
      // Listening again: anything revoked while we were away never reached us.
      handlers.onReset()
      listening = true
      failures = 0
      await sendHeartbeat(next)
    } catch (err) {
      if (client === next) dropConnection(err)
    }
  }

  async function sendHeartbeat(target: pg.Client): Promise<void> {
    try {
      await target.query('select pg_notify($1, $2)', [HEARTBEAT_CHANNEL, instanceToken])
    } catch (err) {
      if (client === target) dropConnection(err)
    }
  }

  const heartbeat = setInterval(() => {
    if (!client || !listening) return
    // A connection that silently stopped answering (half-open TCP) is replaced.
    if (Date.now() - lastHeartbeatAt > staleAfterMs * 3) {
      dropConnection(new Error('listener heartbeat timed out'))
      return
    }
    void sendHeartbeat(client)
  }, heartbeatMs)
  heartbeat.unref()

  void connect()

  return {
    get healthy() {
      return listening && Date.now() - lastHeartbeatAt <= staleAfterMs
    },
    async close() {
      closed = true
      clearInterval(heartbeat)
      clearTimeout(reconnectTimer)
      await release()
    }
  }
}
