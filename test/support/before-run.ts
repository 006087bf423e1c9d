// tap's `before` script (.taprc): runs once before the test files. Makes the migrated PGlite
// template they copy, so that parallel files do not all make it at once. On PostgreSQL
// (TEST_DATABASE_URL) only the PGlite-specific tests need it, and they make it on first use.
// Imported only then: on PostgreSQL this script loads nothing of the service.
if (!process.env.TEST_DATABASE_URL) {
  const { pgliteTemplate } = await import('./pglite-template.js')
  await pgliteTemplate()
}
