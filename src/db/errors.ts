// How database errors are told apart, on both engines.
//
// "Unavailable" means the database cannot be reached or refuses work right now, whatever the query
// (docs/operations.md, "Database outages"): the request answers 503 with Retry-After, never 500,
// and the next request tries again. Anything else from the database is the query's own failure.

/**
 * SQLSTATEs of a database that refuses work for now:
 * - class 08, connection exception;
 * - class 53, insufficient resources: 53300 too many connections, 53100 disk full, 53200 out of memory;
 * - 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting up, shutting
 *   down, in recovery), 57P05 idle-session timeout; 57014 query canceled (statement_timeout, or an
 *   operator's pg_cancel_backend); 55P03 lock not available (lock_timeout);
 * - 25006 read-only SQL transaction: after a failover the old primary, or a standby, refuses writes;
 * - 40001 serialization failure and 40P01 deadlock detected: the transaction was rolled back
 *   whole, nothing of it was written, and the same request sent again succeeds;
 * - 26000 and 42P05, a named prepared statement missing or already there on the connection it
 *   reached: a pooler in transaction mode in between; naming turns off at once
 *   (db/prepared-statements.ts) and the request sent again succeeds.
 */
const UNAVAILABLE_SQLSTATE = /^(08...|53...|57P0[1235]|57014|55P03|25006|40001|40P01|26000|42P05)$/
/** 55000 "object not in prerequisite state" means many things; only this one is an outage. */
const NOT_ACCEPTING_CONNECTIONS = /is not currently accepting connections/i
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN'
])
// pg-pool, pg and PGlite report a lost or refused connection by message only.
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|PGlite is closed|Client has encountered a connection error|not queryable/i

function unavailable(error: Error): boolean {
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string') {
    if (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE_CODES.has(code)) return true
    if (code === '55000' && NOT_ACCEPTING_CONNECTIONS.test(error.message)) return true
  }
  return UNAVAILABLE_MESSAGES.test(error.message)
}

/**
 * True for errors that mean the database is down, unreachable or refusing work (answered as 503,
 * not 500); also when such an error is the cause of this one. Only for errors of database calls:
 * a Node.js code such as ECONNRESET says nothing about where the connection was (a client that
 * aborts its request body raises one too; the error handler tells those apart first).
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (unavailable(current)) return true
  }
  return false
}

/**
 * A refusal that a pool connection will keep giving: a read-only session (the server it reached
 * was demoted, or is a standby) stays read-only however often it is asked. Such a connection is
 * closed instead of going back to the pool, so the next one reaches the current primary.
 */
export function isReadOnlyRefusal(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '25006'
}

export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505'
}
