// Baseline 1: a bare Fastify hello-world route. The ceiling of the HTTP stack on this machine.
import Fastify from 'fastify'
import { serve } from './common.js'

await serve(async () => {
  const app = Fastify({ logger: false })
  app.get('/', async () => ({ hello: 'world' }))
  return app
})
