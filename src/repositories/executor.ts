import { CompiledQuery, type Kysely, type Transaction } from 'kysely'
import { registerPreparedStatement } from '../db/prepared-statements.js'
import type { Database } from '../db/types.js'

/** What every repository function takes first: the database, or the transaction it must stay in. */
export type Executor = Kysely<Database> | Transaction<Database>

/**
 * Runs a hand-written statement through Kysely's executor: the same driver, dialect (PGlite or
 * pg) and transaction as every other query, without building the query on each call, and on
 * PostgreSQL as a named prepared statement (db/prepared-statements.ts). For the hot paths only
 * (logout, refresh, the session check, login, /me), where building the query costs more than the
 * rest of the request's own work; everything else uses the builder. `text` must be
 * one of a fixed set of texts, built once: values go in `parameters`, never into the text.
 */
export async function runStatement<Row>(db: Executor, text: string, parameters: readonly unknown[]): Promise<Row[]> {
  registerPreparedStatement(text)
  const result = await db.executeQuery<Row>(CompiledQuery.raw(text, [...parameters]))
  return result.rows
}
