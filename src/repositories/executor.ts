import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/types.js'

/** What every repository function takes first: the database, or the transaction it must stay in. */
export type Executor = Kysely<Database> | Transaction<Database>
