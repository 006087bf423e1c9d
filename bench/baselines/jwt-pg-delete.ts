// Baseline 3 (PostgreSQL only): verifies the Bearer token like baseline 2, then runs one
// `DELETE FROM user_sessions WHERE id = $1` (the token's sid) with `pg`, and answers 204 when a
// row was deleted, 404 when none was. The ceiling for POST /logout: one signature check and one
// single-row delete (which also fires the table's NOTIFY trigger), with a pool the size of the
// service's (PG_POOL_SIZE, default 10).
import fastifyJwt from '@fastify/jwt'
import Fastify from 'fastify'
import pg from 'pg'
import { jwtSettings, serve } from './common.js'

const { algorithm, key } = jwtSettings()
const connectionString = process.env.DATABASE_URL
if (!connectionString) {
  console.error('DATABASE_URL is required')
  process.exit(1)
}

await serve(async () => {
  const pool = new pg.Pool({ connectionString, max: Number(process.env.PG_POOL_SIZE ?? 10) })
  pool.on('error', () => {})
  const app = Fastify({ logger: false })
  app.addHook('onClose', async () => pool.end())
  await app.register(fastifyJwt, {
    secret: algorithm === 'HS256' ? key : { public: key, private: '' },
    verify: { algorithms: [algorithm] }
  })
  app.post('/logout', async (request, reply) => {
    const { sid } = await request.jwtVerify<{ sid: string }>()
    const result = await pool.query('DELETE FROM user_sessions WHERE id = $1', [sid])
    return reply.code(result.rowCount === 1 ? 204 : 404).send()
  })
  return app
})
