import type { FastifyRequest } from 'fastify'
import type { ClientInfo } from '../services/context.js'

/** The User-Agent and client IP a session is created from (request.ip honours TRUST_PROXY). */
export function clientInfo(request: FastifyRequest): ClientInfo {
  // PostgreSQL text cannot hold NUL; Node's HTTP parser refuses it, but be sure.
  return { userAgent: request.headers['user-agent']?.replaceAll('\u0000', ''), ip: request.ip }
}
