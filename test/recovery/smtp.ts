// A real SMTP server for the recovery tests (the smtp-server package), on a loopback port: what
// the service's nodemailer transport talks to, never a stub transport. Not a test file itself.
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'

export interface ReceivedMail {
  readonly from: string
  readonly to: string[]
  readonly raw: string
  readonly messageId: string | undefined
  readonly subject: string | undefined
  /** The text/plain and text/html parts, transfer encoding undone. */
  readonly text: string
  readonly html: string
}

export interface TestSmtpServer {
  readonly port: number
  readonly url: string
  readonly mails: ReceivedMail[]
  /** Stops listening (the service's sends then fail: connection refused) until `start()`. */
  stop(): Promise<void>
  /** Listens again, on the same port. */
  start(): Promise<void>
}

/** Undoes quoted-printable (RFC 2045 §6.7): soft line breaks and =XX. */
function decodeQuotedPrintable(body: string): string {
  const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
  return Buffer.from(bytes, 'latin1').toString('utf8')
}

function decodePart(headers: string, body: string): string {
  const encoding = /content-transfer-encoding:\s*([\w-]+)/i.exec(headers)?.[1]?.toLowerCase()
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body)
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
  return body
}

const headerOf = (head: string, name: string) => new RegExp(`^${name}:\\s*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head)?.[1]?.replace(/\r?\n[ \t]/g, ' ').trim()

/** The parts of a multipart/alternative mail as nodemailer writes it (or a single-part one). */
export function parseMail(raw: string): { text: string, html: string, subject: string | undefined, messageId: string | undefined } {
  const [head, ...rest] = raw.split(/\r?\n\r?\n/)
  const body = rest.join('\r\n\r\n')
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(head)?.[1]
  let text = ''
  let html = ''
  const parts = boundary ? body.split(`--${boundary}`).slice(1, -1) : [`${head}\r\n\r\n${body}`]
  for (const part of parts) {
    const trimmed = part.replace(/^\r?\n/, '')
    const [partHead, ...partBody] = trimmed.split(/\r?\n\r?\n/)
    const content = decodePart(partHead, partBody.join('\r\n\r\n'))
    if (/content-type:\s*text\/html/i.test(partHead)) html = content
    else if (/content-type:\s*text\/plain/i.test(partHead)) text = content
  }
  return { text, html, subject: headerOf(head, 'Subject'), messageId: headerOf(head, 'Message-ID') }
}

export async function startSmtpServer(): Promise<TestSmtpServer> {
  const mails: ReceivedMail[] = []
  const make = () => new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8')
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          ...parseMail(raw)
        })
        callback()
      })
    }
  })
  let server = make()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.server.address() as AddressInfo).port
  let listening = true
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    mails,
    async stop() {
      if (!listening) return
      listening = false
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
    async start() {
      if (listening) return
      server = make()
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
      listening = true
    }
  }
}

/** The token in a mail's link (`…token=<token>`, in the query or the fragment). */
export function tokenOf(mail: ReceivedMail): string {
  const match = /[#?&]token=([A-Za-z0-9_%-]+)/.exec(mail.text)
  if (!match) throw new Error(`no token link in the mail: ${mail.text}`)
  return decodeURIComponent(match[1])
}

/** Waits until `count` mails have arrived for `to` (every 20 ms, at most `ms`); returns them. */
export async function mailsFor(server: TestSmtpServer, to: string, count = 1, ms = 15_000): Promise<ReceivedMail[]> {
  const deadline = Date.now() + ms
  for (;;) {
    const found = server.mails.filter((mail) => mail.to.includes(to))
    if (found.length >= count) return found
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} mail(s) to ${to} (got ${found.length})`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
