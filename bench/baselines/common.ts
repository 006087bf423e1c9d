// What every baseline shares: it listens on 127.0.0.1:$PORT only, answers GET /ready, logs
// nothing, and with WORKERS=n (the benchmark's multi-core mode) runs n node:cluster workers on
// the same port, as the service's cluster entry does.
import cluster from 'node:cluster'
import type { FastifyInstance } from 'fastify'

export type Algorithm = 'EdDSA' | 'ES256' | 'HS256'

export function jwtSettings(): { algorithm: Algorithm, key: string } {
  const algorithm = process.env.BASELINE_JWT_ALGORITHM as Algorithm | undefined
  const key = process.env.BASELINE_JWT_KEY
  if (!algorithm || !['EdDSA', 'ES256', 'HS256'].includes(algorithm) || !key) {
    console.error('BASELINE_JWT_ALGORITHM (EdDSA, ES256, HS256) and BASELINE_JWT_KEY (PEM public key or HS256 secret) are required')
    process.exit(1)
  }
  return { algorithm, key }
}

export async function serve(build: () => Promise<FastifyInstance>): Promise<void> {
  const host = process.env.HOST ?? '127.0.0.1'
  if (host !== '127.0.0.1') {
    console.error('baselines listen on 127.0.0.1 only')
    process.exit(1)
  }
  const port = Number(process.env.PORT ?? 3000)
  const workers = Number(process.env.WORKERS ?? 0)

  if (workers > 1 && cluster.isPrimary) {
    for (let i = 0; i < workers; i++) cluster.fork()
    const stop = () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM')
      setTimeout(() => process.exit(0), 2_000).unref()
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    return
  }

  const app = await build()
  app.get('/ready', async (_request, reply) => reply.code(204).send())
  const close = () => {
    const forced = setTimeout(() => process.exit(0), 2_000)
    forced.unref()
    void app.close().finally(() => process.exit(0))
  }
  process.once('SIGTERM', close)
  process.once('SIGINT', close)
  await app.listen({ host, port })
}
