// How the service runs the embedded PostgreSQL (PGlite): its start-up parameters and how its
// WebAssembly is compiled, shared by the service (db/database.ts) and the child process that
// initialises a new data directory (db/pglite-initdb.ts).
import { setFlagsFromString } from 'node:v8'
import { PGlite } from '@electric-sql/pglite'

/**
 * PGlite's own start-up parameters, plus shared_buffers = 16 MB instead of PostgreSQL's 128 MB.
 * PGlite's buffer pool lives in its WebAssembly memory and is touched in full at start-up, so
 * 128 MB of it were resident from the first second (about 140 MB with the WAL buffers that scale
 * with it). The service's tables are small and their files stay in the kernel's page cache, so a
 * smaller pool costs a read system call, not a disk read (docs/operations.md, "Memory").
 * test/support/pglite-template.ts gives the test templates the same value.
 */
export const PGLITE_START_PARAMS: readonly string[] = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB']

/**
 * V8 compiles WebAssembly with its baseline compiler (Liftoff) and then recompiles the functions
 * that run most with its optimising one. For one of PostgreSQL's largest functions that
 * recompilation takes about 600 MB for half a second: the process touched about 800 MB at each
 * start on Node 24 (1.1 GB in the initdb child), and kept about 60 MB more at rest. Without it,
 * queries of the embedded engine run 10-17 % slower (docs/operations.md, "Memory"); PostgreSQL
 * is the answer for throughput anyway. Set before the module is compiled, for the whole process
 * (Node's own WebAssembly, undici's HTTP parser for fetch, is then compiled the same way).
 */
function useBaselineWasmCompiler(): void {
  setFlagsFromString('--no-wasm-dynamic-tiering')
  setFlagsFromString('--no-wasm-tier-up')
}

/** The embedded engine on `dataDir`, started as the service runs it. */
export async function createPglite(dataDir: string): Promise<PGlite> {
  useBaselineWasmCompiler()
  return PGlite.create(dataDir, { startParams: [...PGLITE_START_PARAMS] })
}
