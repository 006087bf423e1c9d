import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import type { ClientInfo } from './services/context.js'

/**
 * The client's IP address: request.ip (which honours TRUST_PROXY) when it is an IP address,
 * else the socket's. With TRUST_PROXY set, X-Forwarded-For is whatever the client or proxy
 * wrote; a value that is not an address (6 KB of text, HTML) is ignored rather than stored as a
 * session's `ip` or used as a rate-limit key (docs/security.md, "Rate limits and lockout").
 */
export function clientIp(request: FastifyRequest): string | undefined {
  const ip = request.ip
  if (ip !== undefined && isIP(ip) !== 0) return ip
  return request.socket?.remoteAddress
}

/** The User-Agent and client IP a session is created from. */
export function clientInfo(request: FastifyRequest): ClientInfo {
  // PostgreSQL text cannot hold NUL; Node's HTTP parser refuses it, but be sure.
  return { userAgent: request.headers['user-agent']?.replaceAll('\u0000', ''), ip: clientIp(request) }
}
