// A TCP proxy in front of PostgreSQL that a test can cut and restore, to simulate the database
// becoming unreachable (network partition, restart) without touching the real server.
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface TcpProxy {
  readonly port: number
  /** Drops every open connection and refuses new ones. */
  cut(): Promise<void>
  /** Accepts connections again, on the same port. */
  restore(): Promise<void>
  close(): Promise<void>
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0

  function listen(): Promise<void> {
    server = createServer((client) => {
      const upstream = connect(targetPort, targetHost)
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on('close', () => sockets.delete(socket))
        socket.on('error', () => {})
      }
      client.pipe(upstream).pipe(client)
    })
    return new Promise((resolve, reject) => {
      server!.once('error', reject)
      server!.listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port
        resolve()
      })
    })
  }

  async function cut(): Promise<void> {
    const closing = server ? new Promise<void>((resolve) => server!.close(() => resolve())) : Promise.resolve()
    server = undefined
    for (const socket of sockets) socket.destroy()
    await closing
  }

  await listen()
  return {
    get port() {
      return port
    },
    cut,
    restore: listen,
    close: cut
  }
}
