import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { loadConfig } from './config.js'
import { releaseMemoryWhenIdle } from './idle-memory.js'

// Process entry only: configuration, app, listen, graceful shutdown.
async function main(): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (err) {
    console.error(`Invalid configuration: ${(err as Error).message}`)
    process.exit(1)
  }

  let app
  try {
    app = await buildApp(config)
  } catch (err) {
    // Bad key material, an unreachable database or a schema that is behind: one clear line.
    console.error(`Cannot start: ${(err as Error).message}`)
    process.exit(1)
  }

  if (config.isProduction && config.publicUrlDefaulted) {
    app.log.warn({ issuer: config.tokens.issuer }, 'PUBLIC_URL is not set: tokens and metadata name the listener address; set it to the URL clients use')
  }

  const idleRelease = releaseMemoryWhenIdle({
    servers: app.internal ? [app.server, app.internal.server] : [app.server],
    idleSeconds: config.memoryReleaseIdle,
    log: app.log,
    beforeCollect: () => app.authContext.passwords.releaseIdleThreads()
  })

  // On SIGTERM/SIGINT: stop accepting, let in-flight requests finish, close the database.
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    idleRelease.stop()
    await app.close()
  })

  try {
    await app.listen({ host: config.host, port: config.port })
  } catch (err) {
    console.error(`Cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`)
    process.exit(1)
  }

  // The internal listener (/metrics, /docs when configured `internal`); app.close() closes it.
  const internal = app.internal
  if (internal && config.internal.port !== null) {
    try {
      await internal.listen({ host: config.internal.host, port: config.internal.port, listenTextResolver: (address) => `Internal listener on ${address}` })
    } catch (err) {
      console.error(`Cannot listen on ${config.internal.host}:${config.internal.port} (INTERNAL_HOST, INTERNAL_PORT): ${(err as Error).message}`)
      await app.close()
      process.exit(1)
    }
  }
}

await main()
