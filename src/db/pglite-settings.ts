// How the service runs the embedded PostgreSQL (PGlite): its start-up parameters, shared by the
// service (db/database.ts) and the child process that initialises a new data directory
// (db/pglite-initdb.ts).
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
