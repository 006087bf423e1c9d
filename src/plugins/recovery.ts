// Adds account recovery's machinery (docs/recovery.md): the mail transport (SMTP, or the log
// outside production), the outbox sender with its metrics, and `app.recovery` for the routes.
import fp from 'fastify-plugin'
import { Counter } from 'prom-client'
import type { RecoverySettings } from '../config.js'
import { MailOutbox } from '../mail/outbox.js'
import { tokenSealer } from '../mail/seal.js'
import { logTransport, smtpTransport } from '../mail/transport.js'
import { resolveNextRequest, type RecoveryContext } from '../services/recovery.js'

export interface RecoveryPluginOptions {
  settings: RecoverySettings
  now: () => Date
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Recovery's context for the services; the outbox sender as `recovery.outbox` (tests run it by hand). */
    recovery: RecoveryContext & { outbox: MailOutbox }
  }
}

/** The domain part of MAIL_FROM (`Name <a@b>` or `a@b`), for Message-IDs. */
function domainOf(from: string): string {
  return /@([^>\s]+)>?\s*$/.exec(from)?.[1] ?? 'localhost'
}

export default fp<RecoveryPluginOptions>(
  async function recoveryPlugin(app, { settings, now }) {
    const log = app.log.child({ component: 'mail' })
    const transport = settings.smtpUrl ? smtpTransport(settings.smtpUrl, settings.mailFrom) : logTransport(log, settings.mailFrom)
    const sealer = tokenSealer(app.keys.jtiChainKey)
    const registers = [app.metricsRegistry]
    const metrics = {
      sent: new Counter({ name: 'auth_mail_sent_total', help: 'Recovery mails the mail server accepted', labelNames: ['kind'], registers }),
      attemptsFailed: new Counter({ name: 'auth_mail_send_failures_total', help: 'Failed attempts to send a recovery mail (retried or given up)', labelNames: ['kind'], registers }),
      givenUp: new Counter({ name: 'auth_mail_given_up_total', help: 'Recovery mails given up after MAIL_MAX_ATTEMPTS', labelNames: ['kind'], registers })
    }
    // `wake` is called only once requests are served, after `outbox` below exists.
    const context: RecoveryContext = { settings, sealer, wake: () => outbox.wake() }
    const outbox: MailOutbox = new MailOutbox({
      db: app.db,
      transport,
      sealer,
      now,
      log,
      metrics,
      links: {
        password_reset: { template: settings.passwordResetUrl, ttlSeconds: settings.passwordResetTtl },
        email_verification: { template: settings.emailVerificationUrl, ttlSeconds: settings.emailVerificationTtl }
      },
      retryBaseSeconds: settings.retryBase,
      maxAttempts: settings.maxAttempts,
      messageIdDomain: domainOf(settings.mailFrom),
      resolveNextRequest: () => resolveNextRequest(app.authContext, context)
    })
    app.decorate('recovery', { ...context, outbox })
    if (transport.kind === 'log') log.warn('no SMTP_URL: recovery mails are written to the log, links included (development only)')
    app.addHook('onReady', async () => {
      outbox.start(settings.pollInterval)
      outbox.wake() // what waited while no instance ran
    })
    app.addHook('onClose', async () => {
      await outbox.stop()
      transport.close()
    })
  },
  { name: 'recovery', dependencies: ['db', 'auth', 'metrics'] }
)
