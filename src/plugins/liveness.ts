// Adds `app.sessionLiveness`: is the session behind an access token still alive? Every Bearer
// check asks it, so a deleted session's access tokens die at once (contract, "Session lifecycle").
import fp from 'fastify-plugin'
import { isSessionLive } from '../repositories/sessions.js'

export interface SessionLiveness {
  isLive(sessionId: string, userId: string): Promise<boolean>
  /** Sessions this instance just deleted. */
  forget(sessionIds: readonly string[]): void
}

declare module 'fastify' {
  interface FastifyInstance {
    sessionLiveness: SessionLiveness
  }
}

export interface LivenessPluginOptions {
  now: () => Date
}

export default fp<LivenessPluginOptions>(
  async function livenessPlugin(app, options) {
    app.decorate('sessionLiveness', {
      isLive: (sessionId, userId) => isSessionLive(app.db, sessionId, userId, options.now()),
      forget: () => {}
    } satisfies SessionLiveness)
  },
  { name: 'liveness', dependencies: ['db'] }
)
