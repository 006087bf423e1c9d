// How a machine client presents its id and secret (RFC 6749 §2.3.1): an `Authorization: Basic`
// header (client_secret_basic) or `client_id` and `client_secret` in the form body
// (client_secret_post). Never both: a request using two methods is malformed (§2.3).

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post'

export type PresentedCredentials =
  | { readonly kind: 'credentials', readonly method: ClientAuthMethod, readonly clientId: string, readonly secret: string }
  /** A Basic header that does not decode to `id:secret`. */
  | { readonly kind: 'malformed', readonly method: ClientAuthMethod }
  /** More than one method in one request. */
  | { readonly kind: 'ambiguous' }
  | { readonly kind: 'none' }

const BASIC = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i
const ATTEMPTED_BASIC = /^Basic(\s|$)/i

/** Whether the Authorization header tries the Basic scheme at all (then a 401 names it). */
export function triesBasic(authorization: string | undefined): boolean {
  return ATTEMPTED_BASIC.test(authorization ?? '')
}

/** application/x-www-form-urlencoded decoding, as §2.3.1 has the id and secret encoded before Basic. */
function formDecode(value: string): string | undefined {
  // Nothing to decode in most ids and secrets (base64url): the same string, without the copies.
  if (!value.includes('%') && !value.includes('+')) return value
  try {
    return decodeURIComponent(value.replaceAll('+', ' '))
  } catch {
    return undefined
  }
}

function basicCredentials(authorization: string): PresentedCredentials {
  const encoded = BASIC.exec(authorization)?.[1]
  const decoded = encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  const clientId = colon > 0 ? formDecode(decoded.slice(0, colon)) : undefined
  const secret = colon > 0 ? formDecode(decoded.slice(colon + 1)) : undefined
  if (!clientId || secret === undefined) return { kind: 'malformed', method: 'client_secret_basic' }
  return { kind: 'credentials', method: 'client_secret_basic', clientId, secret }
}

/**
 * The credentials of a request: from its Authorization header, or from the body's `client_id`
 * and `client_secret` when `body` is given (the token endpoint; /introspect takes Basic only).
 */
export function presentedCredentials(
  authorization: string | undefined,
  body?: { client_id?: string, client_secret?: string }
): PresentedCredentials {
  const basic = triesBasic(authorization)
  const posted = body?.client_secret !== undefined
  if (basic && (posted || body?.client_id !== undefined)) return { kind: 'ambiguous' }
  if (basic) return basicCredentials(authorization!)
  if (!posted) return { kind: 'none' }
  if (!body!.client_id) return { kind: 'malformed', method: 'client_secret_post' }
  return { kind: 'credentials', method: 'client_secret_post', clientId: body!.client_id, secret: body!.client_secret! }
}
