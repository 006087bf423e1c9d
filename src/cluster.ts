// Multi-core: `WORKERS=n node --import tsx src/cluster.ts` (or `npm run start:cluster`) forks n
// workers (default: one per core), each a complete server sharing one port through node:cluster.
// Each worker is simply another instance: its own pool and its own LISTEN connection, so a
// logout on one worker reaches every other worker exactly as it reaches other machines.
// PostgreSQL only: the embedded PGlite belongs to one process.
//
// Metrics (METRICS=internal): every worker listens on the one internal port too, and the worker
// a scrape reaches asks the primary for the whole cluster's metrics, which it aggregates from
// every worker (src/cluster-metrics.ts). One scrape target per machine.
import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import { serveClusterMetrics } from './cluster-metrics.js'

const CRASH_LOOP_MS = 5_000

if (cluster.isPrimary) {
  if (!process.env.DATABASE_URL) {
    console.error('Cluster mode needs DATABASE_URL (PostgreSQL): the embedded database serves one process. Use npm start instead.')
    process.exit(1)
  }
  const workers = Number(process.env.WORKERS ?? availableParallelism())
  if (!Number.isInteger(workers) || workers < 1) {
    console.error(`WORKERS must be a positive whole number (got "${process.env.WORKERS}")`)
    process.exit(1)
  }

  let stopping = false
  const startedAt = new Map<number, number>()
  const fork = () => {
    const worker = cluster.fork()
    startedAt.set(worker.id, Date.now())
  }
  for (let i = 0; i < workers; i++) fork()

  serveClusterMetrics()

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(process.exitCode ?? 0)
      return
    }
    // A worker that dies at once (bad configuration, unreachable database) would die again.
    if (Date.now() - (startedAt.get(worker.id) ?? 0) < CRASH_LOOP_MS) {
      console.error(`worker ${worker.process.pid} exited during start-up (code ${code}); stopping`)
      stopping = true
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM')
      process.exitCode = 1
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(1)
      return
    }
    console.error(`worker ${worker.process.pid} died (${signal ?? code}); starting another`)
    fork()
  })

  // Graceful shutdown: every worker finishes its requests (close-with-grace in server.ts).
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      stopping = true
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
      setTimeout(() => process.exit(1), 15_000).unref()
    })
  }
} else {
  await import('./server.js')
}
