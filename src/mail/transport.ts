// Where mails go: an SMTP server through nodemailer (SMTP_URL), or, outside production without
// SMTP_URL, the log (so the service runs on a bare machine: docs/recovery.md, "Trying it locally").
import nodemailer from 'nodemailer'
import type { FastifyBaseLogger } from 'fastify'
import type { MailContent } from './templates.js'

export interface OutgoingMail extends MailContent {
  readonly to: string
  /** Stable per outbox row: a resent mail (after a crash mid-send) carries the same Message-ID. */
  readonly messageId: string
}

export interface MailTransport {
  /** Resolves once the server accepted the mail; rejects with the reason otherwise. */
  send(mail: OutgoingMail): Promise<void>
  close(): void
  /** `smtp` or `log`, for the start-up line. */
  readonly kind: 'smtp' | 'log'
}

export function smtpTransport(url: string, from: string): MailTransport {
  const transporter = nodemailer.createTransport({
    url,
    // A mail server that hangs must not hold a send past the outbox's lease (src/mail/outbox.ts).
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
    // Never log the mail (it holds the link, hence the token).
    logger: false,
    debug: false
  })
  return {
    kind: 'smtp',
    async send(mail) {
      await transporter.sendMail({ from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html, messageId: mail.messageId })
    },
    close() {
      transporter.close()
    }
  }
}

/**
 * Development only (refused in production by src/config.ts): the mail, link included, as one log
 * line. The one place a token reaches the log, on purpose (docs/security.md, "Secrets in logs").
 */
export function logTransport(log: FastifyBaseLogger, from: string): MailTransport {
  return {
    kind: 'log',
    async send(mail) {
      log.info({ mail: { from, to: mail.to, subject: mail.subject, message_id: mail.messageId, text: mail.text } }, 'mail (no SMTP_URL: written to the log, not sent)')
    },
    close() {}
  }
}
