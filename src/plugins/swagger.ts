// Adds the OpenAPI 3 document generated from the route schemas (GET /docs/json) and its UI
// (GET /docs). https://github.com/fastify/fastify-swagger
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

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
          securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } }
        }
      },
      // Keep shared schemas under their $id (User, TokenPair, ...) instead of def-N.
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) }
    })
    await app.register(swaggerUi, { routePrefix: '/docs' })
  },
  { name: 'swagger' }
)
