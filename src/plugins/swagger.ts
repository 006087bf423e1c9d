// The OpenAPI 3 document generated from the route schemas (`app.swagger()`, always built) and,
// where DOCS says (src/app.ts, src/internal.ts), its UI at GET /docs and the document at
// GET /docs/json. https://github.com/fastify/fastify-swagger
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { DOCS_CSP } from './security-headers.js'

export default fp(
  async function swaggerPlugin(app) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Auth service',
          description: 'Sessions with rotating refresh tokens, and logout that really ends a session.',
          version: '1.0.0'
        },
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "A user's access token" },
            clientToken: {
              type: 'oauth2',
              description: "A machine client's access token from POST /api/v1/auth/token, sent as Bearer",
              flows: {
                clientCredentials: {
                  tokenUrl: '/api/v1/auth/token',
                  scopes: {
                    introspect: 'POST /introspect',
                    'sessions:admin': 'The admin endpoints',
                    'ssf.manage': 'Create, change and delete event streams',
                    'ssf.read': 'Read event stream configuration and status, poll'
                  }
                }
              }
            },
            clientBasic: { type: 'http', scheme: 'basic', description: 'A machine client\'s id and secret (client_secret_basic)' }
          }
        }
      },
      // Keep shared schemas under their $id (User, TokenPair, ...) instead of def-N.
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) }
    })
  },
  { name: 'swagger' }
)

/**
 * GET /docs (the Swagger UI, under its own CSP) and GET /docs/json on `app`, describing `source`'s
 * routes: the public app itself, or the public app seen from the internal listener. There,
 * @fastify/swagger-ui finds the document through a stand-in for @fastify/swagger that asks the
 * public app for it.
 */
export async function docsRoutes(app: FastifyInstance, source: FastifyInstance): Promise<void> {
  if (app !== source) {
    await app.register(fp(
      async (internal) => {
        internal.decorate('swagger', ((options?: { yaml?: boolean }) => source.swagger(options as never)) as FastifyInstance['swagger'])
      },
      { name: '@fastify/swagger' }
    ))
  }
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP })
}
