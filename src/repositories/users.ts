import type { NewUserRow, UserRow } from '../db/types.js'
import type { Executor } from './executor.js'

export type PublicUser = Pick<UserRow, 'id' | 'email' | 'display_name' | 'created_at'>

const PUBLIC_COLUMNS = ['id', 'email', 'display_name', 'created_at'] as const

export async function insertUser(db: Executor, user: NewUserRow): Promise<PublicUser> {
  return db.insertInto('users').values(user).returning(PUBLIC_COLUMNS).executeTakeFirstOrThrow()
}

export async function findUserByEmail(db: Executor, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst()
}

export async function findUserById(db: Executor, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
}

export async function findPublicUserById(db: Executor, id: string): Promise<PublicUser | undefined> {
  return db.selectFrom('users').select(PUBLIC_COLUMNS).where('id', '=', id).executeTakeFirst()
}

export async function updatePasswordHash(db: Executor, id: string, passwordHash: string, now: Date): Promise<void> {
  await db.updateTable('users').set({ password_hash: passwordHash, updated_at: now }).where('id', '=', id).execute()
}
