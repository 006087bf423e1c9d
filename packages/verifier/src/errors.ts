/**
 * Why verify() refused a token, or why the verifier could not start.
 *
 * - `invalid_token` (401): not a genuine, current access token of the issuer for this audience
 *   (signature, `typ`, `iss`, `aud`, `exp`, `iat`, a required claim, an unknown `kid`).
 * - `token_revoked` (401): genuine, but its session has ended (a logout reached the verifier).
 * - `revocation_stale` (503): genuine, but the revocation stream has not answered for longer than
 *   `staleAfterMs` (or an early-evicted entry could have named it), so the verifier cannot know
 *   whether the session still exists; with `fallback: 'introspect'` only when introspection too
 *   could not answer.
 * - `unavailable` (503): the issuer's keys could not be fetched to check the token.
 * - `closed` (503): verify() after close().
 * - `misconfigured`: start-up failed in a way retrying will not fix (wrong issuer, refused
 *   client credentials, a missing scope, metadata without the needed endpoints); ready() rejects.
 */
export type VerifierErrorCode = 'invalid_token' | 'token_revoked' | 'revocation_stale' | 'unavailable' | 'closed' | 'misconfigured'

const STATUS: Readonly<Record<VerifierErrorCode, 401 | 503 | 500>> = {
  invalid_token: 401,
  token_revoked: 401,
  revocation_stale: 503,
  unavailable: 503,
  closed: 503,
  misconfigured: 500
}

export class VerifierError extends Error {
  override name = 'VerifierError'
  readonly code: VerifierErrorCode
  /** The HTTP status a resource server answers with: 401, 503 (or 500 for `misconfigured`). */
  readonly statusCode: 401 | 503 | 500

  constructor(code: VerifierErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.statusCode = STATUS[code]
  }
}

export function isVerifierError(error: unknown): error is VerifierError {
  return error instanceof VerifierError
}
