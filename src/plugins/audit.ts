// Adds `app.auditLog`: every audit event, once stored in `auth_events` (by the same statement as
// the change it describes, see repositories/), is also logged as one JSON line and counted.
import fp from 'fastify-plugin'
import type { AuditEvent } from '../repositories/auth-events.js'

export interface AuditLog {
  /** `endedSessions`: the sessions an event ended (logout of all devices ends several). */
  recorded(event: AuditEvent, endedSessions?: readonly string[]): void
}

declare module 'fastify' {
  interface FastifyInstance {
    auditLog: AuditLog
  }
}

export default fp(
  async function auditPlugin(app) {
    const log = app.log.child({ component: 'audit' })
    app.decorate('auditLog', {
      recorded(event, endedSessions) {
        app.authMetrics.authEvents.inc({ kind: event.kind }, endedSessions?.length ?? 1)
        log.info(
          {
            audit: {
              kind: event.kind,
              user_id: event.userId,
              session_id: event.sessionId,
              ended_sessions: endedSessions,
              ip: event.ip,
              ...(event.actorClientId === undefined ? {} : { actor_client_id: event.actorClientId }),
              detail: event.detail
            }
          },
          `auth event: ${event.kind}`
        )
      }
    } satisfies AuditLog)
  },
  { name: 'audit', dependencies: ['metrics'] }
)
