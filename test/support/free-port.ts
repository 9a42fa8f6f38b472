/** TCP ports free on loopback now, for tests that must pass a fixed port (as a NetworkPolicy would fix it). */
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'

/** Lowest port drawn: above the registered services tests might meet (HDFS, S3 servers use 8000–9999). */
const LOWEST = 10_000

/**
 * `count` distinct ports free on 127.0.0.1, drawn at random below the kernel's ephemeral range
 * (`net.ipv4.ip_local_port_range`) and checked by binding them. A port handed out by the kernel for a
 * `listen(0)` or an outbound connection could be taken again by any process between this check and the
 * test's own bind (CI saw `EADDRINUSE 127.0.0.1:39391`); a port below that range is only ever taken
 * by an explicit bind. All are held open until every one is chosen, so two never coincide.
 */
export async function freePorts (count: number): Promise<number[]> {
  // Linux's default range where the file cannot be read.
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999')
  const ephemeralLow = Number(range.trim().split(/\s+/)[0])
  const highest = Math.max(LOWEST + 1000, (Number.isInteger(ephemeralLow) ? ephemeralLow : 32_768) - 1)
  const servers: Server[] = []
  try {
    while (servers.length < count) {
      const port = LOWEST + Math.floor(Math.random() * (highest - LOWEST + 1))
      const s = createServer()
      s.listen(port, '127.0.0.1')
      try {
        await Promise.race([once(s, 'listening'), once(s, 'error').then(([err]) => { throw err })])
        servers.push(s)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
      }
    }
    return servers.map(s => (s.address() as { port: number }).port)
  } finally {
    await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
  }
}

/** One port as {@link freePorts} draws them. */
export async function freePort (): Promise<number> {
  return (await freePorts(1))[0]!
}
