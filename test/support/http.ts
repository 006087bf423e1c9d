// One HTTP request with a JSON body or none, from node:http (a keep-alive agent, a chosen local
// address), bounded in time: for the tests that talk to real processes (nginx, instances).
import { request as httpRequest, type Agent } from 'node:http'

export interface Reply {
  status: number
  body: string
}

export interface RequestOptions {
  method?: 'GET' | 'POST'
  agent?: Agent
  /** The source address (another address of the 127.0.0.0/8 loopback net on Linux). */
  localAddress?: string
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string
  /** Sent as JSON. */
  body?: unknown
  timeoutMs?: number
}

export function sendRequest(url: string, options: RequestOptions = {}): Promise<Reply> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
      ...(options.agent ? { agent: options.agent } : {}),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) })
      },
      timeout: options.timeoutMs ?? 10_000
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end(payload)
  })
}
