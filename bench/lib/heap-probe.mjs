/* global process */
// Loaded into a service by the curves scenario (node --expose-gc --import this file): on SIGWINCH
// (not SIGUSR2: close-with-grace shuts the service down on that one, and SIGWINCH is ignored by default),
// two full garbage collections, then one line `BENCH_HEAP {process.memoryUsage()}` on stdout,
// which the bench reads from the child's output (bench/lib/bulk.ts, readHeap). Plain JavaScript:
// it is imported before tsx is.
process.on('SIGWINCH', () => {
  globalThis.gc?.()
  globalThis.gc?.()
  process.stdout.write(`\nBENCH_HEAP ${JSON.stringify(process.memoryUsage())}\n`)
})
