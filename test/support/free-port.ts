/** TCP ports free on loopback now, for tests that must pass a fixed port (as a NetworkPolicy would fix it). */
import { once } from 'node:events'
import { createServer, type AddressInfo, type Server } from 'node:net'

/**
 * `count` distinct ports the kernel just handed out on 127.0.0.1 and that are closed again. All are held
 * open until every one is chosen, so two never coincide; another process may still take one before the
 * test binds it (unlikely within a test's time on a loopback port from the ephemeral range).
 */
export async function freePorts (count: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      const s = createServer()
      servers.push(s)
      s.listen(0, '127.0.0.1')
      await once(s, 'listening')
    }
    return servers.map(s => (s.address() as AddressInfo).port)
  } finally {
    await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
  }
}
