// Machine clients at the HTTP layer (docs/clients.md): their credentials at /token and
// /introspect, and their access tokens at every route that needs a scope.
//
//   app.requireScope(scope)            onRequest: a machine token granting `scope`
//                                      (401 without one, 403 insufficient_scope with the wrong one)
//   app.clientCredentialsOf(request)   the client a request's id and secret authenticate (memoized;
//                                      failures are audited), for /token and /introspect
import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { TokenRejectedError } from '../auth/claims.js'
import { presentedCredentials, type PresentedCredentials } from '../auth/client-credentials.js'
import type { Scope, ServiceClient, ServiceClients } from '../auth/service-clients.js'
import { insertAuthEvent } from '../repositories/auth-events.js'
import { auditFacts } from '../services/context.js'
import { clientInfo } from '../client-info.js'
import { bearerMissingError, bearerToken } from './auth.js'
import { InsufficientScopeError, InvalidAccessTokenError, OAuthError } from './http-errors.js'

export interface ServiceClientsOptions {
  clients: ServiceClients
}

/** The outcome of a client authentication: the client, or the RFC 6749 §5.2 error to answer. */
export type ClientAuthentication = { client: ServiceClient } | { error: OAuthError }

declare module 'fastify' {
  interface FastifyInstance {
    serviceClients: ServiceClients
    requireScope: (scope: Scope) => onRequestHookHandler
    /**
     * Authenticates the request's client by its id and secret (Basic, or the body's
     * `client_id`/`client_secret` when `allowPost`), once per request: the rate limiter and the
     * handler both ask. A failure is audited (`client_auth_failed`), never with the secret.
     */
    clientCredentialsOf: (request: FastifyRequest, allowPost: boolean) => Promise<ClientAuthentication>
  }
  interface FastifyRequest {
    /** The machine client a token or credentials of this request authenticated. */
    serviceClient: ServiceClient | undefined
    clientAuthentication: Promise<ClientAuthentication> | undefined
  }
}

/** The realm of every Basic challenge (RFC 7617 §2). */
export const BASIC_CHALLENGE = 'Basic realm="auth-service", charset="UTF-8"'
const MAX_LOGGED_CLIENT_ID = 64

/**
 * RFC 6749 §5.2 invalid_client. Always a 401 with the Basic challenge, whichever method was
 * tried: a 401 must name a scheme (RFC 9110 §15.5.2), and Basic is the one to retry with.
 */
export function invalidClient(description: string): OAuthError {
  return new OAuthError(401, 'invalid_client', description, BASIC_CHALLENGE)
}

export default fp<ServiceClientsOptions>(
  async function serviceClientsPlugin(app, { clients }) {
    app.decorate('serviceClients', clients)
    app.decorateRequest('serviceClient', undefined)
    app.decorateRequest('clientAuthentication', undefined)

    app.decorate('requireScope', (scope: Scope): onRequestHookHandler => {
      return function requireScope(request, _reply, done) {
        const token = bearerToken(request)
        if (!token) return done(bearerMissingError(request))
        let granted: string[]
        let client: ServiceClient | undefined
        try {
          const claims = app.tokenVerifier.verify(token, 'machine')
          granted = claims.scope.split(' ')
          // A client removed from SERVICE_CLIENTS_FILE loses its tokens at the restart that removes it.
          client = clients.get(claims.client_id)
        } catch (err) {
          return done(err instanceof TokenRejectedError ? new InvalidAccessTokenError({ cause: err }) : (err as Error))
        }
        if (!client) return done(new InvalidAccessTokenError())
        if (!granted.includes(scope) || !client.scopes.includes(scope)) return done(new InsufficientScopeError(scope))
        request.serviceClient = client
        done()
      }
    })

    async function authenticate(request: FastifyRequest, presented: PresentedCredentials): Promise<ClientAuthentication> {
      switch (presented.kind) {
        case 'none':
          return { error: invalidClient('Client authentication is required') }
        case 'ambiguous':
          return { error: new OAuthError(400, 'invalid_request', 'Use one client authentication method, not several') }
        case 'malformed':
          await recordFailure(request, presented.method, undefined)
          return { error: invalidClient('Malformed client credentials') }
      }
      const client = clients.authenticate(presented.clientId, presented.secret)
      if (!client) {
        await recordFailure(request, presented.method, presented.clientId)
        return { error: invalidClient('Client authentication failed') }
      }
      request.serviceClient = client
      return { client }
    }

    async function recordFailure(request: FastifyRequest, method: string, clientId: string | undefined): Promise<void> {
      // Only a declared client's id is recorded: a presented id that names no client may be a
      // secret sent in the wrong field (id and secret swapped), and must not reach the audit trail.
      const named = clientId === undefined ? {} : clients.get(clientId) ? { client_id: clientId.slice(0, MAX_LOGGED_CLIENT_ID) } : { unknown_client: true }
      const detail = { method, ...named }
      const event = { ...auditFacts(app.authContext, 'client_auth_failed', clientInfo(request), detail), userId: null, sessionId: null }
      await insertAuthEvent(app.db, event)
      app.authContext.recorded(event)
    }

    app.decorate('clientCredentialsOf', (request: FastifyRequest, allowPost: boolean) => {
      request.clientAuthentication ??= authenticate(
        request,
        presentedCredentials(request.headers.authorization, allowPost ? (request.body as Record<string, string>) : undefined)
      )
      return request.clientAuthentication
    })
  },
  { name: 'service-clients', dependencies: ['auth', 'db'] }
)
