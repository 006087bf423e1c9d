// The OAuth endpoints for machine clients (docs/api.md, "POST /token" and "POST /introspect"):
// form bodies, and every error in the shape RFC 6749 §5.2 gives, `{ error, error_description }`,
// since OAuth client libraries read nothing else.
import formBody from '@fastify/formbody'
import { parse as parseForm } from 'fast-querystring'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyError, FastifyRequest } from 'fastify'
import { triesBasic } from '../auth/client-credentials.js'
import { parseScopes, SCOPES, type ServiceClient } from '../auth/service-clients.js'
import { insertAuthEvent } from '../repositories/auth-events.js'
import { auditFacts } from '../services/context.js'
import { introspect, type IntrospectionContext } from '../services/introspection.js'
import { clientInfo } from '../client-info.js'
import { bearerChallenge, triageError } from '../plugins/errors.js'
import { InsufficientScopeError, insufficientScopeChallenge, OAuthError, type OAuthErrorCode } from '../plugins/http-errors.js'
import { BASIC_CHALLENGE } from '../plugins/service-clients.js'
import {
  IntrospectionRequestSchema,
  IntrospectionResponseSchema,
  OAuthErrorRef,
  OAuthErrorSchema,
  TokenRequestSchema,
  TokenResponseSchema
} from '../../schemas/oauth.js'

const FORM = 'application/x-www-form-urlencoded'

function withoutEmptyValues(fields: Record<string, unknown>): Record<string, unknown> {
  for (const [name, value] of Object.entries(fields)) if (value === '') delete fields[name]
  return fields
}

/** The RFC 6749 §5.2 code of an error that is not an OAuthError, by its status. */
function oauthCodeOf(statusCode: number): OAuthErrorCode {
  if (statusCode === 429 || statusCode === 503) return 'temporarily_unavailable'
  return statusCode >= 500 ? 'server_error' : 'invalid_request'
}

export interface OAuthRoutesOptions {
  /** JWT_CLIENT_ID: the `client_id` introspection reports for a user's refresh token. */
  userTokensClientId: string
}

const oauthRoutes: FastifyPluginAsyncTypebox<OAuthRoutesOptions> = async (app, options) => {
  // These two endpoints take forms only: a JSON body is a 415 here.
  app.removeContentTypeParser('application/json')
  // RFC 6749 §3.2: "Parameters sent without a value MUST be treated as if they were omitted".
  await app.register(formBody, { bodyLimit: 16_384, parser: (text: string) => withoutEmptyValues(parseForm(text)) })
  app.addSchema(OAuthErrorSchema)

  app.setErrorHandler(function oauthErrorHandler(error: FastifyError, request, reply) {
    let oauth: OAuthError
    if (error instanceof OAuthError) {
      request.log.info({ code: error.oauthCode, statusCode: error.statusCode }, error.message)
      oauth = error
    } else if (error instanceof InsufficientScopeError) {
      request.log.info({ code: error.code, statusCode: 403 }, error.message)
      oauth = new OAuthError(403, 'insufficient_scope', error.message, insufficientScopeChallenge(error.scope))
    } else if (error.code === 'AUTH_INVALID_TOKEN') {
      request.log.info({ code: error.code, statusCode: 401 }, error.message)
      oauth = new OAuthError(401, 'invalid_token', error.message, bearerChallenge(error))
    } else if (error.code === 'AUTH_MISSING_TOKEN') {
      oauth = new OAuthError(401, 'invalid_client', 'Client authentication is required', BASIC_CHALLENGE)
    } else {
      const { statusCode, message } = triageError(app, error, request, reply)
      oauth = new OAuthError(statusCode, oauthCodeOf(statusCode), message)
    }
    if (oauth.challenge) reply.header('www-authenticate', oauth.challenge)
    return reply
      .code(oauth.statusCode)
      .send({ error: oauth.oauthCode, ...(oauth.description ? { error_description: oauth.description } : {}) })
  })

  /** The request's client by its credentials, or the invalid_client (or invalid_request) to answer. */
  async function authenticatedClient(request: FastifyRequest, allowPost: boolean): Promise<ServiceClient> {
    const outcome = await app.clientCredentialsOf(request, allowPost)
    if ('error' in outcome) throw outcome.error
    return outcome.client
  }
  const credentialsAreGood = (allowPost: boolean) => async (request: FastifyRequest) =>
    'client' in (await app.clientCredentialsOf(request, allowPost))

  app.post('/token', {
    // Failed client authentications per IP; a good one never counts (services call all the time).
    preHandler: app.limitFailedAuthentication('client', credentialsAreGood(true)),
    schema: {
      tags: ['machine clients'],
      summary: 'Client credentials grant (RFC 6749 §4.4): an access token for a machine client',
      consumes: [FORM],
      security: [{ clientBasic: [] }, {}],
      body: TokenRequestSchema,
      response: { 200: TokenResponseSchema, 400: OAuthErrorRef, 401: OAuthErrorRef, 415: OAuthErrorRef, 429: OAuthErrorRef, 503: OAuthErrorRef }
    },
    handler: async (request, reply) => {
      const client = await authenticatedClient(request, true)
      if (request.body.grant_type !== 'client_credentials') {
        throw new OAuthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported')
      }
      const scopes = grantedScopes(client, request.body.scope)
      const scope = scopes.join(' ')
      const now = app.authContext.now()
      const issued = app.tokens.issueMachineToken(client.clientId, scope, now)
      const event = { ...auditFacts(app.authContext, 'client_token_issued', clientInfo(request), { scope }), actorClientId: client.clientId, userId: null, sessionId: null }
      await insertAuthEvent(app.db, event)
      app.authContext.recorded(event)
      // RFC 6749 §5.1: no-store (set for the whole API) and, for HTTP/1.0 caches, Pragma.
      reply.header('pragma', 'no-cache')
      return { access_token: issued.token, token_type: 'Bearer' as const, expires_in: issued.expiresIn, scope }
    }
  })

  const introspection: IntrospectionContext = {
    db: app.db,
    verifier: app.tokenVerifier,
    tokens: app.tokens,
    liveness: app.sessionLiveness,
    now: app.authContext.now,
    clientId: options.userTokensClientId
  }
  const bearerIntrospection = app.requireScope('introspect')
  app.post('/introspect', {
    // A Bearer machine token, or the client's own credentials by Basic (RFC 7662 §2.1).
    onRequest: (request, reply, done) => (triesBasic(request.headers.authorization) ? done() : bearerIntrospection.call(app, request, reply, done)),
    preHandler: app.limitFailedAuthentication('client', async (request) =>
      request.serviceClient !== undefined || (await credentialsAreGood(false)(request))),
    schema: {
      tags: ['machine clients'],
      summary: "RFC 7662 token introspection: whether a user's access or refresh token is live now",
      consumes: [FORM],
      security: [{ clientToken: ['introspect'] }, { clientBasic: [] }],
      body: IntrospectionRequestSchema,
      response: { 200: IntrospectionResponseSchema, 400: OAuthErrorRef, 401: OAuthErrorRef, 403: OAuthErrorRef, 415: OAuthErrorRef, 429: OAuthErrorRef, 503: OAuthErrorRef }
    },
    handler: async (request) => {
      const client = request.serviceClient ?? (await authenticatedClient(request, false))
      if (!client.scopes.includes('introspect')) {
        throw new OAuthError(403, 'insufficient_scope', 'The client lacks the introspect scope')
      }
      return introspect(introspection, request.body.token, request.body.token_type_hint)
    }
  })
}

/** RFC 6749 §3.3: the scopes asked for, each one the client's; none asked for: all of them. */
function grantedScopes(client: ServiceClient, requested: string | undefined): string[] {
  if (requested === undefined) return [...client.scopes]
  let scopes
  try {
    scopes = parseScopes(requested)
  } catch {
    // Not quoted back: whatever was sent (a secret in the wrong field) would reach the log too.
    throw new OAuthError(400, 'invalid_scope', `scope names an unknown scope (known: ${SCOPES.join(', ')})`)
  }
  if (scopes.length === 0) throw new OAuthError(400, 'invalid_scope', 'scope is empty')
  const refused = scopes.find((scope) => !client.scopes.includes(scope))
  if (refused) throw new OAuthError(400, 'invalid_scope', `The client may not have the scope "${refused}"`)
  return scopes
}

export default oauthRoutes
