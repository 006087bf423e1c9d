import { hash, verify, type Algorithm } from '@node-rs/argon2'

// OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1. @node-rs/argon2 runs the
// hashing on libuv's thread pool, never on the event loop.
const ARGON2_OPTIONS = {
  algorithm: 2 as Algorithm, // Algorithm.Argon2id (a const enum, which isolatedModules cannot import)
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1
} as const

export async function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_OPTIONS)
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password)
  } catch {
    return false // a corrupt stored hash never logs anyone in
  }
}

let dummyHash: Promise<string> | undefined

/**
 * Spends the same argon2id time as a real check, for unknown emails: login answers an unknown
 * email and a wrong password alike, in about the same time (no account enumeration by timing).
 */
export async function burnPasswordCheck(password: string): Promise<false> {
  dummyHash ??= hashPassword('timing-equaliser-for-unknown-accounts')
  await verifyPassword(await dummyHash, password)
  return false
}
