// The hot-path statements run as named prepared statements on PostgreSQL (db/prepared-statements.ts):
// prepared once per connection, and anything not registered still runs unnamed.
import pg from 'pg'
import t from 'tap'
import { registerPreparedStatement, usePreparedStatements } from '../../src/db/prepared-statements.js'

const databaseUrl = process.env.TEST_DATABASE_URL

t.test('registered texts become prepared statements', { skip: databaseUrl ? false : 'needs PostgreSQL: set TEST_DATABASE_URL' }, async (t) => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  t.teardown(() => client.end())
  usePreparedStatements(client as unknown as pg.PoolClient)

  const registered = 'select $1::int + 1 as answer'
  registerPreparedStatement(registered)
  for (const n of [1, 41]) {
    const { rows } = await client.query(registered, [n])
    t.equal(rows[0].answer, n + 1, 'same results as an unnamed query')
  }
  await client.query('select $1::text as unregistered', ['x'])

  const { rows } = await client.query<{ statement: string }>('select statement from pg_prepared_statements')
  t.same(rows.map((row) => row.statement), [registered], 'only the registered text, prepared once')
})
