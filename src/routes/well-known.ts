import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuthorizationServerMetadataSchema } from '../../schemas/oauth.js'
import { JwksSchema } from '../../schemas/well-known.js'
import { SsfConfigurationSchema } from '../../schemas/ssf.js'
import { SCOPES } from '../auth/service-clients.js'

export interface WellKnownOptions {
  /** PUBLIC_URL: the base of every absolute URL in the metadata. */
  publicUrl: string
  issuer: string
  /** Where the API lives under the public URL (`/api/v1/auth`). */
  apiPrefix: string
  /** Push streams can be created (SSF_PUSH_ALLOWED_ORIGINS is set). */
  pushEnabled?: boolean
}

/** RFC 8414 §2 metadata: what a standard OAuth client or resource server discovers. */
export function authorizationServerMetadata({ publicUrl, issuer, apiPrefix }: WellKnownOptions) {
  const api = `${publicUrl}${apiPrefix}`
  return Object.freeze({
    issuer,
    jwks_uri: `${publicUrl}/.well-known/jwks.json`,
    token_endpoint: `${api}/token`,
    introspection_endpoint: `${api}/introspect`,
    revocation_endpoint: `${api}/revoke`,
    // No authorization endpoint: users log in through the API, machine clients by client credentials.
    response_types_supported: [],
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    // A machine token with `introspect` (Bearer) is accepted as well; RFC 8414 has no name for it.
    introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
    // RFC 7009 revocation of a user's refresh token needs no client: the token is the credential.
    revocation_endpoint_auth_methods_supported: ['none'],
    scopes_supported: [...SCOPES]
  })
}

/** SSF 1.0 §7.1 transmitter metadata (docs/ssf.md). */
export function transmitterMetadata({ publicUrl, issuer, apiPrefix, pushEnabled }: WellKnownOptions) {
  const ssf = `${publicUrl}${apiPrefix}/ssf`
  return Object.freeze({
    spec_version: '1_0',
    issuer,
    jwks_uri: `${publicUrl}/.well-known/jwks.json`,
    // Push only where the operator allowed receivers' origins.
    delivery_methods_supported: pushEnabled ? ['urn:ietf:rfc:8936', 'urn:ietf:rfc:8935'] : ['urn:ietf:rfc:8936'],
    configuration_endpoint: `${ssf}/streams`,
    status_endpoint: `${ssf}/status`,
    verification_endpoint: `${ssf}/verify`,
    // Machine tokens from the client credentials grant.
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
    // Every stream carries every user's events: there is no subject to add or remove.
    default_subjects: 'ALL'
  })
}

const wellKnownRoutes: FastifyPluginAsyncTypebox<WellKnownOptions> = async (app, options) => {
  const metadata = authorizationServerMetadata(options)
  const transmitter = transmitterMetadata(options)
  // SSF 1.0 §7.2: an issuer with a path has its document under /.well-known/ssf-configuration/<path>.
  const issuerPath = URL.canParse(options.issuer) ? new URL(options.issuer).pathname.replace(/\/+$/, '') : ''
  for (const url of ['/.well-known/ssf-configuration', ...(issuerPath ? [`/.well-known/ssf-configuration${issuerPath}`] : [])]) {
    app.get(url, {
      schema: {
        tags: ['keys'],
        summary: 'Shared Signals transmitter metadata (SSF 1.0 §7)',
        response: { 200: SsfConfigurationSchema }
      },
      handler: async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(transmitter)
    })
  }
  app.get('/.well-known/oauth-authorization-server', {
    schema: {
      tags: ['keys'],
      summary: 'OAuth 2.0 authorization server metadata (RFC 8414)',
      response: { 200: AuthorizationServerMetadataSchema }
    },
    handler: async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(metadata)
  })

  app.get('/.well-known/jwks.json', {
    schema: {
      tags: ['keys'],
      summary: 'Public keys that verify access tokens (every configured key, by kid)',
      response: { 200: JwksSchema }
    },
    handler: async (_request, reply) => {
      // Verifiers may cache it; rotation keeps retired keys here until their tokens expire.
      return reply.header('cache-control', 'public, max-age=300').send(app.keys.jwks)
    }
  })
}

export default wellKnownRoutes
