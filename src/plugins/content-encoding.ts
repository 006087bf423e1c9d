// A request body must not be content-encoded (docs/api.md, "Conventions"): the service decodes
// no content coding, and Fastify would parse a gzip body as if it were plain (or, worse, accept
// a plain body labelled gzip). Any body whose Content-Encoding is not `identity` is a 415 before
// it is read, with `Accept-Encoding: identity` (RFC 9110 §15.5.16). A preParsing hook, so the
// Bearer check of a route (an onRequest hook) still answers first.
import createError from '@fastify/error'
import type { FastifyInstance, preParsingHookHandler } from 'fastify'
import fp from 'fastify-plugin'

export const UnsupportedContentEncodingError = createError(
  'AUTH_UNSUPPORTED_CONTENT_ENCODING',
  'Request bodies must not be content-encoded (send Content-Encoding: identity or none)',
  415
)

/** `identity`, or a list of nothing but `identity` (case-insensitive, any whitespace). */
function isIdentity(value: string): boolean {
  return value.split(',').every((coding) => coding.trim().toLowerCase() === 'identity')
}

function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  if (headers['transfer-encoding'] !== undefined) return true
  const length = headers['content-length']
  return length !== undefined && length !== '0'
}

export default fp(
  async function contentEncodingPlugin(app: FastifyInstance) {
    const refuseEncodedBodies: preParsingHookHandler = (request, reply, payload, done) => {
      const encoding = request.headers['content-encoding']
      if (encoding === undefined || !hasBody(request.headers) || isIdentity(String(encoding))) return done(null, payload)
      reply.header('accept-encoding', 'identity')
      done(new UnsupportedContentEncodingError())
    }
    app.addHook('preParsing', refuseEncodedBodies)
  },
  { name: 'content-encoding' }
)
