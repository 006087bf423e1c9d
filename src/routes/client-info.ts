import type { FastifyRequest } from 'fastify'
import type { ClientInfo } from '../services/context.js'

/** The User-Agent and client IP a session is created from (request.ip honours TRUST_PROXY). */
export function clientInfo(request: FastifyRequest): ClientInfo {
  return { userAgent: request.headers['user-agent'], ip: request.ip }
}
