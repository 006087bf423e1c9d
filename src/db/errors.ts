// How database errors are told apart, on both engines.

// SQLSTATE classes meaning "the database cannot be reached right now", not "the query is wrong".
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-3])/
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'])
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|PGlite is closed|Client has encountered a connection error|not queryable/i

/** True for errors that mean the database is down or unreachable (answered as 503, not 500). */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE_CODES.has(code))) return true
  return UNAVAILABLE_MESSAGES.test(error.message)
}

export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '23505'
}
