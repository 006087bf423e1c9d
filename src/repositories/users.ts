import type { NewUserRow, UserRow } from '../db/types.js'
import { runStatement, type Executor } from './executor.js'

export type PublicUser = Pick<UserRow, 'id' | 'email' | 'display_name' | 'email_verified' | 'created_at'>
/** A user as the admin endpoints show it. */
export type AdminUser = PublicUser & Pick<UserRow, 'disabled'>

const PUBLIC_COLUMNS = ['id', 'email', 'display_name', 'email_verified', 'created_at'] as const

// Login's and GET /me's lookups: hot paths, so fixed statements run by runStatement.
const FIND_USER_BY_EMAIL = 'select id, email, password_hash, display_name, disabled, email_verified, created_at, updated_at from users where email = $1'
const FIND_PUBLIC_USER_BY_ID = `select ${PUBLIC_COLUMNS.join(', ')} from users where id = $1`

export async function insertUser(db: Executor, user: NewUserRow): Promise<PublicUser> {
  return db.insertInto('users').values(user).returning(PUBLIC_COLUMNS).executeTakeFirstOrThrow()
}

export async function findUserByEmail(db: Executor, email: string): Promise<UserRow | undefined> {
  const rows = await runStatement<UserRow>(db, FIND_USER_BY_EMAIL, [email])
  return rows[0]
}

export async function findUserById(db: Executor, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
}

export async function findPublicUserById(db: Executor, id: string): Promise<PublicUser | undefined> {
  const rows = await runStatement<PublicUser>(db, FIND_PUBLIC_USER_BY_ID, [id])
  return rows[0]
}

export async function updatePasswordHash(db: Executor, id: string, passwordHash: string, now: Date, options: { verifyEmail?: boolean } = {}): Promise<void> {
  await db
    .updateTable('users')
    .set({ password_hash: passwordHash, updated_at: now, ...(options.verifyEmail ? { email_verified: true } : {}) })
    .where('id', '=', id)
    .execute()
}

/** Marks the address verified, if it is still `email` (false: the user or the address is gone). */
export async function markEmailVerified(db: Executor, id: string, email: string, now: Date): Promise<boolean> {
  const rows = await db
    .updateTable('users')
    .set({ email_verified: true, updated_at: now })
    .where('id', '=', id)
    .where('email', '=', email)
    .returning('id')
    .execute()
  return rows.length > 0
}

const ADMIN_COLUMNS = [...PUBLIC_COLUMNS, 'disabled'] as const

export async function findAdminUserByEmail(db: Executor, email: string): Promise<AdminUser | undefined> {
  return db.selectFrom('users').select(ADMIN_COLUMNS).where('email', '=', email).executeTakeFirst()
}

/**
 * Whether the user exists, holding its row until the transaction ends: `for key share` lets
 * logins and refreshes go on, `for update` (a disable) makes every login that is opening a
 * session wait, or wait for it (repositories/sessions.ts, INSERT_SESSION).
 */
export async function holdUser(trx: Executor, id: string, strength: 'key share' | 'update'): Promise<boolean> {
  const query = trx.selectFrom('users').select('id').where('id', '=', id)
  const row = await (strength === 'update' ? query.forUpdate() : query.forKeyShare()).executeTakeFirst()
  return row !== undefined
}

export async function setUserDisabled(db: Executor, id: string, disabled: boolean, now: Date): Promise<void> {
  await db.updateTable('users').set({ disabled, updated_at: now }).where('id', '=', id).execute()
}
