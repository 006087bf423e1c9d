// The outbox's sender (docs/recovery.md, "Mail delivery"). Each run first resolves waiting
// POST /password/forgot requests into tokens and mails (services/recovery.ts), then claims the
// due mails (FOR UPDATE SKIP LOCKED, so of several instances exactly one takes each), sends them
// and records the outcome. A failed send is retried with back-off (MAIL_RETRY_BASE, doubling, at
// most 15 minutes) up to MAIL_MAX_ATTEMPTS, then given up: logged at error and counted. A sender
// that dies mid-send leaves its claim to expire (the lease), after which another one retries.
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Counter } from 'prom-client'
import type { Kysely } from 'kysely'
import type { Database, RecoveryTokenKind } from '../db/types.js'
import { claimDueMails, markFailed, markSent, scheduleRetry, type ClaimedMail } from '../repositories/mail-outbox.js'
import type { TokenSealer } from './seal.js'
import { composeMail, linkFor } from './templates.js'
import type { MailTransport } from './transport.js'

export interface MailMetrics {
  /** Mails the server accepted, by kind. */
  readonly sent: Counter<'kind'>
  /** Failed attempts (each one retried or given up), by kind. */
  readonly attemptsFailed: Counter<'kind'>
  /** Mails given up after MAIL_MAX_ATTEMPTS, by kind. */
  readonly givenUp: Counter<'kind'>
}

export interface MailOutboxOptions {
  db: Kysely<Database>
  transport: MailTransport
  sealer: TokenSealer
  now: () => Date
  log: FastifyBaseLogger
  metrics: MailMetrics
  /** Link templates and lifetimes per kind. */
  links: Record<RecoveryTokenKind, { template: string, ttlSeconds: number }>
  retryBaseSeconds: number
  maxAttempts: number
  /** The domain of the Message-IDs (MAIL_FROM's). */
  messageIdDomain: string
  /** Resolves the oldest waiting request; false when none is left (services/recovery.ts). */
  resolveNextRequest: () => Promise<boolean>
}

export interface OutboxRun {
  sent: number
  failed: number
}

/** How long a claimed mail is this sender's: longer than a send can take (src/mail/transport.ts timeouts). */
const LEASE_SECONDS = 120
const MAX_DELAY_SECONDS = 900
const BATCH = 10
/** Bounds one run, so a flood of requests never keeps a run (and the shutdown waiting for it) going. */
const MAX_REQUESTS_PER_RUN = 200
const MAX_BATCHES_PER_RUN = 20

export function retryDelaySeconds(base: number, attempts: number): number {
  return Math.min(MAX_DELAY_SECONDS, base * 2 ** Math.min(attempts - 1, 20))
}

/** A short reason for the outbox row and the log: the error's code and message, never the mail. */
function reasonOf(error: unknown): string {
  const err = error as { code?: unknown, responseCode?: unknown, message?: unknown }
  const parts = [err.code, err.responseCode, typeof err.message === 'string' ? err.message : String(error)].filter((part) => part !== undefined)
  return parts.join(' ').slice(0, 300)
}

export class MailOutbox {
  private running: Promise<OutboxRun> | undefined
  private again = false
  private scheduled = false
  private timer: NodeJS.Timeout | undefined
  private closed = false

  constructor(private readonly options: MailOutboxOptions) {}

  /** Every `seconds`, and whenever woken. */
  start(seconds: number): void {
    this.timer = setInterval(() => this.wake(), seconds * 1000)
    this.timer.unref()
  }

  /** A run soon; if one is under way, another right after it (it may have missed the new row). */
  wake(): void {
    if (this.closed) return
    if (this.running) {
      this.again = true
      return
    }
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.runOnce().catch((err: unknown) => this.options.log.warn({ err: reasonOf(err) }, 'mail outbox run failed; will retry'))
    })
  }

  /** Runs now (what the timer does); a call during a run waits for it. */
  runOnce(): Promise<OutboxRun> {
    this.running ??= this.run().finally(() => {
      this.running = undefined
      if (this.again && !this.closed) {
        this.again = false
        this.wake()
      }
    })
    return this.running
  }

  /** Resolves once no run is under way or about to start (tests: nothing of the sender in the way). */
  async settled(): Promise<void> {
    while (this.running || this.scheduled) {
      await (this.running?.catch(() => {}) ?? new Promise((resolve) => setImmediate(resolve)))
    }
  }

  async stop(): Promise<void> {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    await this.running?.catch(() => {})
  }

  private async run(): Promise<OutboxRun> {
    for (let i = 0; i < MAX_REQUESTS_PER_RUN && !this.closed; i++) {
      if (!(await this.options.resolveNextRequest())) break
    }
    const total: OutboxRun = { sent: 0, failed: 0 }
    for (let batch = 0; batch < MAX_BATCHES_PER_RUN && !this.closed; batch++) {
      const now = this.options.now()
      const claimed = await claimDueMails(this.options.db, now, new Date(now.getTime() + LEASE_SECONDS * 1000), BATCH)
      for (const mail of claimed) {
        if (await this.deliver({ ...mail, id: String(mail.id) })) total.sent++
        else total.failed++
      }
      if (claimed.length < BATCH) break
    }
    return total
  }

  /** Sends one claimed mail and records the outcome; true if the server accepted it. */
  private async deliver(mail: ClaimedMail): Promise<boolean> {
    const { db, log, metrics } = this.options
    const token = mail.sealed_token === null ? undefined : this.options.sealer.unseal(mail.sealed_token)
    if (token === undefined) {
      // Sealed under another secret (REFRESH_CHAIN_SECRET or the signing key changed): unsendable.
      await markFailed(db, mail.id, 'the token cannot be unsealed (the signing material changed)')
      metrics.givenUp.inc({ kind: mail.kind })
      log.error({ outbox_id: mail.id, kind: mail.kind }, 'mail given up: its token cannot be unsealed; the user must ask again')
      return false
    }
    const link = this.options.links[mail.kind]
    const content = composeMail(mail.kind, linkFor(link.template, token), link.ttlSeconds)
    const messageId = `<${mail.kind}.${mail.id}.${createHash('sha256').update(mail.sealed_token!).digest('hex').slice(0, 16)}@${this.options.messageIdDomain}>`
    try {
      await this.options.transport.send({ ...content, to: mail.email, messageId })
    } catch (error) {
      const reason = reasonOf(error)
      metrics.attemptsFailed.inc({ kind: mail.kind })
      if (mail.attempts >= this.options.maxAttempts) {
        await markFailed(db, mail.id, reason)
        metrics.givenUp.inc({ kind: mail.kind })
        log.error({ outbox_id: mail.id, kind: mail.kind, attempts: mail.attempts, reason }, 'mail given up after its last attempt')
      } else {
        const delay = retryDelaySeconds(this.options.retryBaseSeconds, mail.attempts)
        await scheduleRetry(db, mail.id, new Date(this.options.now().getTime() + delay * 1000), reason)
        log.warn({ outbox_id: mail.id, kind: mail.kind, attempts: mail.attempts, retry_in_seconds: delay, reason }, 'mail not sent; will retry')
      }
      return false
    }
    await markSent(db, mail.id, this.options.now())
    metrics.sent.inc({ kind: mail.kind })
    log.info({ outbox_id: mail.id, kind: mail.kind, attempts: mail.attempts }, 'mail sent')
    return true
  }
}
