import { Type, type Static } from '@sinclair/typebox'
import { SCOPES } from '../src/auth/service-clients.js'

// The OAuth endpoints (RFC 6749 §4.4 client credentials, RFC 7662 introspection) take form
// bodies. Unknown parameters are ignored, as RFC 6749 §3.2 and RFC 7662 §2.1 require; a
// parameter sent twice arrives as an array and is a 400 invalid_request (RFC 6749 §3.2).
const FormValue = (description: string, maxLength = 512, minLength = 0) => Type.String({ minLength, maxLength, description })

export const TokenRequestSchema = Type.Object(
  {
    grant_type: FormValue('`client_credentials`'),
    scope: Type.Optional(FormValue(`Space-separated subset of the client's scopes (${SCOPES.join(', ')}); none: all of them`)),
    client_id: Type.Optional(FormValue('client_secret_post only')),
    client_secret: Type.Optional(FormValue('client_secret_post only'))
  },
  { title: 'TokenRequest', additionalProperties: true }
)
export type TokenRequest = Static<typeof TokenRequestSchema>

export const TokenResponseSchema = Type.Object(
  {
    access_token: Type.String({ description: 'An RFC 9068 JWT: sub and client_id are the client, aud is this service' }),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ description: 'Seconds (ACCESS_TOKEN_TTL)' }),
    scope: Type.String({ description: 'The scopes granted, space-separated' })
  },
  { title: 'TokenResponse', additionalProperties: false }
)

export const IntrospectionRequestSchema = Type.Object(
  {
    token: FormValue('An access token or refresh token of a user', 8192, 1),
    token_type_hint: Type.Optional(FormValue('`access_token` or `refresh_token`: which to try first; anything else is ignored'))
  },
  { title: 'IntrospectionRequest', additionalProperties: true }
)
export type IntrospectionRequest = Static<typeof IntrospectionRequestSchema>

export const IntrospectionResponseSchema = Type.Object(
  {
    active: Type.Boolean({ description: 'false, and nothing else, for any token that is not live' }),
    token_type: Type.Optional(Type.Union([Type.Literal('access_token'), Type.Literal('refresh_token')])),
    sub: Type.Optional(Type.String({ description: 'The user id' })),
    sid: Type.Optional(Type.String({ description: 'The session id' })),
    client_id: Type.Optional(Type.String()),
    scope: Type.Optional(Type.String()),
    iss: Type.Optional(Type.String()),
    aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    exp: Type.Optional(Type.Integer()),
    iat: Type.Optional(Type.Integer()),
    jti: Type.Optional(Type.String())
  },
  { title: 'IntrospectionResponse', additionalProperties: false }
)
export type IntrospectionResponse = Static<typeof IntrospectionResponseSchema>

/** RFC 6749 §5.2: how /token and /introspect answer an error. */
export const OAuthErrorSchema = Type.Object(
  {
    error: Type.String({ description: 'invalid_request, invalid_client, invalid_grant, invalid_scope, unsupported_grant_type, invalid_token, insufficient_scope, temporarily_unavailable or server_error' }),
    error_description: Type.Optional(Type.String())
  },
  { $id: 'OAuthError', title: 'OAuthError' }
)
export const OAuthErrorRef = Type.Ref(OAuthErrorSchema)

export const AuthorizationServerMetadataSchema = Type.Object(
  {
    issuer: Type.String(),
    jwks_uri: Type.String(),
    token_endpoint: Type.String(),
    introspection_endpoint: Type.String(),
    revocation_endpoint: Type.String(),
    response_types_supported: Type.Array(Type.String(), { description: 'Empty: there is no authorization endpoint' }),
    grant_types_supported: Type.Array(Type.String()),
    token_endpoint_auth_methods_supported: Type.Array(Type.String()),
    introspection_endpoint_auth_methods_supported: Type.Array(Type.String()),
    revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
    scopes_supported: Type.Array(Type.String())
  },
  { title: 'AuthorizationServerMetadata', additionalProperties: false }
)
