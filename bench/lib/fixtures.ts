// Sessions for the logout scenario on PostgreSQL, made the way the service makes them but
// without a login each: rows inserted straight into user_sessions, and access tokens issued by the
// service's own token code with the service's key. A login costs an argon2id hash (a few hundred
// per second here), so a logout run of a fixed duration could not be fed through the API; these
// sessions are indistinguishable from logged-in ones to POST /logout.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { loadConfig } from '../../src/config.js'
import { loadKeyRing } from '../../src/auth/keys.js'
import { createTokenIssuer } from '../../src/auth/token-issuer.js'
import type { BenchDatabase } from './db.js'
import type { Session } from './http.js'
import type { SigningKey } from './service.js'

export type FixtureMaker = (userIds: readonly string[], count: number) => Promise<Session[]>

/** Token settings the bench passes through to the service (bench/lib/service.ts) and so must sign with. */
const TOKEN_SETTINGS = ['JWT_ISSUER', 'JWT_AUDIENCE', 'JWT_CLIENT_ID', 'ACCESS_TOKEN_TTL', 'REFRESH_TOKEN_TTL'] as const

/** The service's own token issuer with its key and settings, for the service at `issuerUrl` (its PUBLIC_URL, the issuer unless JWT_ISSUER is set). */
export async function serviceTokenIssuer(key: SigningKey, issuerUrl: string) {
  const settings: Record<string, string> = {}
  for (const name of TOKEN_SETTINGS) {
    const value = process.env[name]
    if (value !== undefined && value !== '') settings[name] = value
  }
  const config = loadConfig({ JWT_ALGORITHM: key.algorithm, ...key.serviceEnv, ...settings, PUBLIC_URL: issuerUrl, LOG_LEVEL: 'warn' })
  const keys = await loadKeyRing(config.keys, { dataDir: '/nonexistent', isProduction: false })
  return { config, tokens: createTokenIssuer(keys, config.tokens) }
}

/**
 * `serviceUrl`: the service's address, which the bench gives it as PUBLIC_URL and so is the
 * issuer of its tokens (JWT_ISSUER defaults to PUBLIC_URL) unless JWT_ISSUER is set for the run.
 */
export async function fixtureSessions(db: BenchDatabase, key: SigningKey, serviceUrl: string): Promise<FixtureMaker> {
  const { config, tokens } = await serviceTokenIssuer(key, serviceUrl)
  return async (userIds, count) => {
    const now = new Date()
    const expiresAt = new Date(now.getTime() + config.tokens.refreshTtl * 1000)
    const rows = Array.from({ length: count }, (_, i) => ({
      id: randomUUID(),
      userId: userIds[i % userIds.length],
      jtiHash: createHash('sha256').update(randomBytes(32)).digest('hex')
    }))
    await db.insertSessions(rows, now, expiresAt)
    return rows.map((row) => ({
      userId: row.userId,
      sid: row.id,
      access: tokens.issueAccessToken(row.userId, row.id, expiresAt, now).token,
      refresh: '' // never refreshed: logout only
    }))
  }
}
