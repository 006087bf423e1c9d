// Metrics of a node:cluster (src/cluster.ts) as one target. Every worker listens on the one
// internal port, so a scrape reaches any one of them; that worker asks the primary, which asks
// every worker that is up for its registry and aggregates them with prom-client's
// AggregatorRegistry.aggregate (counters and histograms summed), so each scrape sees the whole
// cluster and no counter goes backwards because the next scrape reached another worker. A worker
// that is replaced takes its counts with it: the sums drop, which Prometheus reads as a reset.
// Kept apart from src/internal.ts so the primary loads prom-client only.
import cluster, { type Worker } from 'node:cluster'
import { randomUUID } from 'node:crypto'
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client'

type MetricsJson = Array<MetricObjectWithValues<MetricValue<string>>>

/** worker -> primary: "I can answer" (sent once its registry exists), "give me the cluster's". */
const READY = 'auth-service:metrics-ready'
const CLUSTER_REQUEST = 'auth-service:cluster-metrics'
const CLUSTER_RESPONSE = 'auth-service:cluster-metrics-result'
/** primary -> worker: "your registry, please"; worker -> primary: the answer. */
const WORKER_REQUEST = 'auth-service:worker-metrics'
const WORKER_RESPONSE = 'auth-service:worker-metrics-result'
const TIMEOUT_MS = 5_000

interface Message {
  type?: string
  id?: string
  text?: string
  metrics?: MetricsJson
  error?: string
}

/** In a worker: answers the primary with this registry, and collects the cluster's through it. */
export function clusterCollector(registry: Registry): () => Promise<string> {
  const pending = new Map<string, (message: Message) => void>()
  process.on('message', (message: Message) => {
    if (message?.type === WORKER_REQUEST) {
      registry.getMetricsAsJSON().then(
        (metrics) => process.send?.({ type: WORKER_RESPONSE, id: message.id, metrics }),
        (err: Error) => process.send?.({ type: WORKER_RESPONSE, id: message.id, error: err.message })
      )
    } else if (message?.type === CLUSTER_RESPONSE && message.id) {
      pending.get(message.id)?.(message)
    }
  })
  process.send?.({ type: READY })
  return () => new Promise((resolve, reject) => {
    const id = randomUUID()
    const timer = setTimeout(() => {
      pending.delete(id)
      reject(new Error('the cluster primary did not answer with metrics'))
    }, TIMEOUT_MS * 2)
    pending.set(id, (message) => {
      clearTimeout(timer)
      pending.delete(id)
      if (message.text === undefined) reject(new Error(`cluster metrics: ${message.error}`))
      else resolve(message.text)
    })
    process.send!({ type: CLUSTER_REQUEST, id })
  })
}

/** In the primary: answers a worker's request with every ready worker's metrics, aggregated. */
export function serveClusterMetrics(): void {
  const ready = new Set<Worker>()
  const answers = new Map<string, (worker: Worker, message: Message) => void>()
  cluster.on('exit', (worker) => ready.delete(worker))
  cluster.on('message', (worker: Worker, message: Message) => {
    if (message?.type === READY) ready.add(worker)
    else if (message?.type === WORKER_RESPONSE && message.id) answers.get(message.id)?.(worker, message)
    else if (message?.type === CLUSTER_REQUEST) {
      collect().then(
        (text) => worker.isConnected() && worker.send({ type: CLUSTER_RESPONSE, id: message.id, text }),
        (err: Error) => worker.isConnected() && worker.send({ type: CLUSTER_RESPONSE, id: message.id, error: err.message })
      )
    }
  })

  function collect(): Promise<string> {
    const workers = [...ready].filter((worker) => worker.isConnected())
    const id = randomUUID()
    return new Promise<string>((resolve, reject) => {
      const results: MetricsJson[] = []
      const waiting = new Set(workers)
      const finish = (err?: Error) => {
        clearTimeout(timer)
        answers.delete(id)
        if (err) return reject(err)
        AggregatorRegistry.aggregate(results).metrics().then(resolve, reject)
      }
      const timer = setTimeout(() => finish(new Error(`${waiting.size} worker(s) did not answer with metrics`)), TIMEOUT_MS)
      answers.set(id, (worker, message) => {
        if (!waiting.delete(worker)) return
        if (message.metrics === undefined) return finish(new Error(`worker metrics: ${message.error}`))
        results.push(message.metrics)
        if (waiting.size === 0) finish()
      })
      for (const worker of workers) worker.send({ type: WORKER_REQUEST, id })
      if (workers.length === 0) finish()
    })
  }
}
