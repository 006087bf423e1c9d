// tap's `before` script (.taprc): runs once before the test files. Makes the migrated PGlite
// template they copy, so that parallel files do not all make it at once. On PostgreSQL
// (TEST_DATABASE_URL) only the PGlite-specific tests need it, and they make it on first use.
import { pgliteTemplate } from './pglite-template.js'

if (!process.env.TEST_DATABASE_URL) await pgliteTemplate()
