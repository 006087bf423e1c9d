// The Shared Signals transmitter (docs/ssf.md): `app.ssf` with the stream service, the long-poll
// signal (woken by the `auth_security_event` notifications of db/revocation-feed.ts) and the push
// deliverer, which starts with the app and stops before the database closes.
import fp from 'fastify-plugin'
import { createPushDeliverer, type PushDeliverer } from './push-deliverer.js'
import { EventSignal } from './poll.js'
import { createSetBuilder, type SetBuilder } from './set-builder.js'
import { createStreamService, type SsfSettings, type StreamService } from './streams.js'

export interface SsfPluginOptions {
  readonly settings: SsfSettings
  readonly now: () => Date
}

declare module 'fastify' {
  interface FastifyInstance {
    ssf: {
      readonly streams: StreamService
      readonly sets: SetBuilder
      readonly signal: EventSignal
      readonly push: PushDeliverer
      readonly settings: SsfSettings
    }
  }
}

export default fp<SsfPluginOptions>(
  async function ssfPlugin(app, { settings, now }) {
    const sets = createSetBuilder(app.keys, settings.issuer)
    const signal = new EventSignal()
    const push = createPushDeliverer({ db: app.db, sets, allowedOrigins: settings.pushAllowedOrigins, log: app.log, now })
    const streams = createStreamService({
      db: app.db,
      now,
      settings,
      sets,
      signal,
      // One line per poll, whatever the receiver sent: the first few, shortened.
      setErrors: (streamId, errors) => {
        const entries = Object.entries(errors)
        const first = entries.slice(0, 5).map(([jti, error]) => ({ jti: jti.slice(0, 80), err: error.err.slice(0, 64), description: error.description?.slice(0, 200) }))
        app.log.warn({ streamId, count: entries.length, errors: first }, 'ssf: the receiver reported SET errors; those SETs are not sent again')
      },
      pushChanged: () => push.rescan()
    })

    const unsubscribe = app.database.onSecurityEvent(() => {
      signal.notify()
      push.wake()
    })
    app.addHook('onReady', async () => {
      push.start()
    })
    // Long polls answer at once instead of holding the shutdown up.
    app.addHook('preClose', async () => {
      signal.close()
    })
    app.addHook('onClose', async () => {
      unsubscribe()
      await push.stop()
    })
    app.decorate('ssf', { streams, sets, signal, push, settings })
  },
  { name: 'ssf', dependencies: ['db', 'auth'] }
)
