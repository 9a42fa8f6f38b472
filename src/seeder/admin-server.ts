/**
 * The seeder's admin HTTP endpoint: health, readiness, a JSON view of every version it serves and of
 * the line, and `POST /v1/preheat` to pull a version now.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { httpStatusFor, ModelswarmError } from '../errors.ts'
import type { Seeder } from './seeder.ts'
import { snapshotOf } from './snapshot.ts'
import { parseHostPort } from '../util/host-port.ts'

/** Loopback by default: the admin API can spend the scarce line (preheat). */
export const DEFAULT_ADMIN = '127.0.0.1:7070'

export interface AdminServer { url: string, close: () => Promise<void> }

const MAX_BODY = 64 * 1024

export async function startAdminServer (seeder: Seeder, hostPort: string): Promise<AdminServer> {
  const { host, port } = parseHostPort(hostPort, '--admin')
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin')
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body) + '\n')
    }
    if (req.method === 'GET' && url.pathname === '/healthz') reply(200, { ok: true })
    else if (req.method === 'GET' && url.pathname === '/readyz') reply(200, { ok: true, originReachable: seeder.originReachable, originError: seeder.originError })
    else if (req.method === 'GET' && url.pathname === '/v1/models') reply(200, snapshotOf(seeder))
    else if (req.method === 'POST' && url.pathname === '/v1/preheat') {
      preheat(seeder, req).then(([status, body]) => reply(status, body), (err: Error) => reply(500, { error: err.message }))
    } else reply(404, { error: `no route ${req.method} ${url.pathname}` })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const addr = server.address() as AddressInfo
  return { url: `http://${addr.address}:${addr.port}`, close: () => new Promise(resolve => server.close(() => resolve())) }
}

/** `{"name","version"}` → 202 and the version's state; 404 if the origin has no ready version of that name. */
async function preheat (seeder: Seeder, req: IncomingMessage): Promise<[number, unknown]> {
  let text = ''
  for await (const chunk of req as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8')
    if (text.length > MAX_BODY) return [413, { error: 'body too large' }]
  }
  let body: { name?: unknown, version?: unknown }
  try {
    body = JSON.parse(text) as typeof body
  } catch {
    return [400, { error: 'body must be JSON {"name","version"}' }]
  }
  if (typeof body?.name !== 'string' || typeof body.version !== 'string') return [400, { error: 'body must be JSON {"name","version"}' }]
  try {
    const v = await seeder.preheat({ name: body.name, version: body.version })
    return [202, { name: v.ref.name, version: v.ref.version, state: v.state }]
  } catch (err) {
    const code = (err as { code?: string }).code
    return [err instanceof ModelswarmError ? httpStatusFor(err) : 503, { error: (err as Error).message, code }]
  }
}
