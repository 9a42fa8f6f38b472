/** The seeder's admin HTTP endpoint: health, readiness and a JSON view of every version it serves. */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Seeder } from './seeder.ts'

export interface AdminServer { url: string, close: () => Promise<void> }

export async function startAdminServer (seeder: Seeder, hostPort: string): Promise<AdminServer> {
  const [host, port] = splitHostPort(hostPort)
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin')
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body) + '\n')
    }
    if (req.method === 'GET' && url.pathname === '/healthz') reply(200, { ok: true })
    else if (req.method === 'GET' && url.pathname === '/readyz') reply(200, { ok: true, originReachable: seeder.originReachable })
    else if (req.method === 'GET' && url.pathname === '/v1/models') reply(200, { versions: modelsView(seeder) })
    else reply(404, { error: `no route ${req.method} ${url.pathname}` })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const addr = server.address() as AddressInfo
  return { url: `http://${addr.address}:${addr.port}`, close: () => new Promise(resolve => server.close(() => resolve())) }
}

export function modelsView (seeder: Seeder): unknown[] {
  return [...seeder.versions.values()].map(v => ({
    name: v.ref.name,
    version: v.ref.version,
    headerId: v.meta.headerId,
    state: v.state,
    error: v.error,
    chunks: v.store.layout.count,
    chunksHeld: v.store.have.count,
    bytes: v.store.layout.totalSize,
    bytesPulled: v.pull.bytesRead,
    bytesRetried: v.pull.bytesRetried,
    egressBytes: v.swarm.stats.bytesUp,
    neighbours: v.swarm.neighbours,
    hosts: [...v.swarm.reports].map(([id, r]) => ({ id, ...r, ageMs: Date.now() - r.at }))
  }))
}

function splitHostPort (s: string): [string, number] {
  const i = s.lastIndexOf(':')
  const port = Number(s.slice(i + 1))
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--admin ${JSON.stringify(s)} must be host:port`)
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), port]
}
