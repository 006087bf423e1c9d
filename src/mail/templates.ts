// The recovery mails: plain text and HTML, the link built from PASSWORD_RESET_URL or
// EMAIL_VERIFICATION_URL with the token in place of {token}.
import type { RecoveryTokenKind } from '../db/types.js'

export interface MailContent {
  readonly subject: string
  readonly text: string
  readonly html: string
}

/** The link of a mail: the template with the token (URL-safe base64, so nothing to escape) in it. */
export function linkFor(template: string, token: string): string {
  return template.replaceAll('{token}', encodeURIComponent(token))
}

function lifetime(seconds: number): string {
  if (seconds % 86_400 === 0) return seconds === 86_400 ? '24 hours' : `${seconds / 86_400} days`
  if (seconds % 3600 === 0) return seconds === 3600 ? '1 hour' : `${seconds / 3600} hours`
  if (seconds % 60 === 0) return seconds === 60 ? '1 minute' : `${seconds / 60} minutes`
  return `${seconds} seconds`
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

const COPY: Record<RecoveryTokenKind, { subject: string, intro: string, action: string, outro: string }> = {
  password_reset: {
    subject: 'Reset your password',
    intro: 'Someone (we hope you) asked to reset the password of this account.',
    action: 'Choose a new password',
    outro: 'Resetting the password signs you out everywhere. If you did not ask for this, ignore this mail: your password stays as it is.'
  },
  email_verification: {
    subject: 'Confirm your email address',
    intro: 'Please confirm that this address belongs to you.',
    action: 'Confirm the address',
    outro: 'If you did not create an account, ignore this mail.'
  }
}

export function composeMail(kind: RecoveryTokenKind, link: string, ttlSeconds: number): MailContent {
  const copy = COPY[kind]
  const valid = `The link works once, for ${lifetime(ttlSeconds)}.`
  const text = `${copy.intro}\n\n${copy.action}:\n${link}\n\n${valid}\n${copy.outro}\n`
  const html = [
    '<!doctype html><html><body>',
    `<p>${escapeHtml(copy.intro)}</p>`,
    `<p><a href="${escapeHtml(link)}">${escapeHtml(copy.action)}</a></p>`,
    `<p>${escapeHtml(valid)} ${escapeHtml(copy.outro)}</p>`,
    '</body></html>'
  ].join('\n')
  return { subject: copy.subject, text, html }
}
