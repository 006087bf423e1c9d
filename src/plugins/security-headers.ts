// Security headers on every response (docs/security.md, "Internal endpoints and headers"):
// five of helmet's, with a Content-Security-Policy that allows nothing and cannot be framed, no
// HSTS, and `Referrer-Policy: no-referrer`. The Swagger UI at /docs gets its own, looser CSP
// (DOCS_CSP, set by @fastify/swagger-ui on its routes, src/plugins/swagger.ts).
//
// @fastify/helmet builds its middleware from the options on every request (about 6 µs, plus an
// async hook; registered as a plugin it cut GET /verify's throughput by a third or more). The
// headers do not depend on the request, so helmet computes them once, on a probe instance at
// start-up, and one callback hook sets them on each response.
import fastifyHelmet, { type FastifyHelmetOptions } from '@fastify/helmet'
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify'
import fp from 'fastify-plugin'

/**
 * The API answers JSON (or nothing), which a browser never renders: it may load nothing and be
 * framed by no one (OWASP REST Security Cheat Sheet, "Security headers").
 */
const API_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    frameAncestors: ["'none'"]
  }
}

/**
 * The Swagger UI (@fastify/swagger-ui 6 serves its scripts and styles as files, with no inline
 * script): its own files, the document at ./json, inline styles (the UI sets style attributes),
 * data: images (its SVG icons); still never framed. Checked in Chromium by
 * test/security/docs-browser.test.ts.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'"
].join('; ')

/**
 * What helmet sets: CSP, `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
 * `X-Frame-Options: DENY` (browsers without frame-ancestors) and
 * `Cross-Origin-Resource-Policy: same-origin` (no cross-site page may embed a response). Left
 * out: headers for HTML documents of a web site (Cross-Origin-Opener-Policy, Origin-Agent-Cluster,
 * X-DNS-Prefetch-Control) and for retired browsers and plug-ins (X-Download-Options, IE 8;
 * X-Permitted-Cross-Domain-Policies, Flash; X-XSS-Protection): every header is bytes on every
 * /verify answer.
 */
export const HELMET_OPTIONS: FastifyHelmetOptions = {
  contentSecurityPolicy: API_CSP,
  // HSTS belongs to the TLS-terminating edge (the gateway), which knows the host's TLS set-up;
  // this service speaks plain HTTP behind it, where browsers ignore the header anyway.
  strictTransportSecurity: false,
  referrerPolicy: { policy: 'no-referrer' },
  xFrameOptions: { action: 'deny' },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false
}

/** The headers helmet sets with these options, lower-case name to value, computed once. */
export async function helmetHeaders(options: FastifyHelmetOptions = HELMET_OPTIONS): Promise<Record<string, string>> {
  const probe = Fastify({ logger: false })
  await probe.register(fastifyHelmet, options)
  probe.get('/', (_request, reply) => reply.code(204).send())
  try {
    const response = await probe.inject({ method: 'GET', url: '/' })
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(response.headers)) {
      if (name === 'date' || name === 'connection' || name === 'keep-alive' || name.startsWith('content-')) {
        if (name !== 'content-security-policy') continue
      }
      if (typeof value === 'string') headers[name] = value
    }
    return headers
  } finally {
    await probe.close()
  }
}

let computed: Promise<Array<[string, string]>> | undefined
/** HELMET_OPTIONS' headers, computed on first use and shared by every app of the process. */
function securityHeaders(): Promise<Array<[string, string]>> {
  computed ??= helmetHeaders().then((headers) => Object.entries(headers))
  return computed
}
let known: Array<[string, string]> = []

/**
 * Sets the headers on a reply. Through Fastify's own headers, never `reply.raw.setHeader`: a
 * header set on the raw response sends Node's writeHead down its slow path, which validates every
 * header one by one (measured: a seventh of /verify's throughput).
 */
export function setSecurityHeaders(reply: FastifyReply, headers = known): void {
  for (let i = 0; i < headers.length; i++) reply.header(headers[i][0], headers[i][1])
}

export default fp(
  async function securityHeadersPlugin(app: FastifyInstance) {
    const headers = await securityHeaders()
    known = headers
    // onRequest, so that every later answer (a route's, an error's, the 404's) carries them, and a
    // route can still replace one (the docs' CSP) before it is sent. Fastify's frameworkErrors (a
    // bad URL) answer before any hook runs: src/plugins/errors.ts calls setSecurityHeaders there.
    app.addHook('onRequest', (_request, reply, done) => {
      setSecurityHeaders(reply, headers)
      done()
    })
  },
  { name: 'security-headers' }
)
