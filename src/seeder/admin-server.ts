/**
 * The seeder's admin HTTP endpoint: `/healthz` (fails when the event loop stalls), `/readyz` (fails while
 * recovering the cache, when the origin is unreachable past a grace period, or when a pinned version
 * failed), `/metrics` (Prometheus), a JSON view of every version and of the line (`/v1/models`), and
 * `POST /v1/preheat`, which can spend the scarce line: with a token configured it needs
 * `Authorization: Bearer <token>`.
 */
import { timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { httpStatusFor, ModelswarmError } from '../errors.ts'
import type { Seeder } from './seeder.ts'
import { DEFAULT_ORIGIN_GRACE_MS, liveness, readiness } from './health.ts'
import { seederMetrics } from './metrics.ts'
import { snapshotOf } from './snapshot.ts'
import { parseHostPort } from '../util/host-port.ts'

/** An event loop blocked this long between two health checks is a wedged process. */
const WEDGED_MS = 10_000

export interface AdminServer { url: string, close: () => Promise<void> }

export interface AdminOptions {
  /** @default DEFAULT_ORIGIN_GRACE_MS */
  originGraceMs?: number
  /** Required as a bearer token by requests that change state (preheat). */
  token?: string
}

const MAX_BODY = 64 * 1024

export async function startAdminServer (seeder: Seeder, hostPort: string, opts: AdminOptions = {}): Promise<AdminServer> {
  const { host, port } = parseHostPort(hostPort, '--admin')
  const loop = monitorEventLoopDelay({ resolution: 50 })
  loop.enable()
  const metrics = seederMetrics(seeder)
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body) + '\n')
    }
    // A target URL cannot parse (`GET //`): thrown in this listener it would end the seeder.
    const url = URL.parse(req.url ?? '/', 'http://admin')
    if (url === null) {
      reply(400, { error: `bad request target ${JSON.stringify(req.url)}` })
      return
    }
    const verdict = (v: { ok: boolean, reasons: string[] }, extra: object = {}): void => reply(v.ok ? 200 : 503, { ok: v.ok, reasons: v.reasons, ...extra })
    if (req.method === 'GET' && url.pathname === '/healthz') {
      verdict(liveness(loop.max / 1e6, WEDGED_MS))
      loop.reset()
    } else if (req.method === 'GET' && url.pathname === '/readyz') {
      const { recovering, originDownSince, originError, originReachable, pins } = seeder
      const originGraceMs = opts.originGraceMs ?? DEFAULT_ORIGIN_GRACE_MS
      const ready = readiness({ snapshot: snapshotOf(seeder), recovering, originDownSince, originError, pins, originGraceMs, now: Date.now() })
      verdict(ready, { originReachable, originError })
    } else if (req.method === 'GET' && url.pathname === '/metrics') {
      metrics.metrics().then(text => {
        res.writeHead(200, { 'content-type': metrics.contentType })
        res.end(text)
      }, (err: Error) => reply(500, { error: err.message }))
    } else if (req.method === 'GET' && url.pathname === '/v1/models') reply(200, snapshotOf(seeder))
    else if (req.method === 'POST' && url.pathname === '/v1/preheat') {
      if (!authorized(req, opts.token)) reply(401, { error: 'preheat needs the admin token: Authorization: Bearer <token> (modelswarm preheat --admin-token-file)', code: 'MS_ADMIN_UNAUTHORIZED' })
      else preheat(seeder, req).then(([status, body]) => reply(status, body), (err: Error) => reply(500, { error: err.message }))
    } else reply(404, { error: `no route ${req.method} ${url.pathname}` })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const addr = server.address() as AddressInfo
  return {
    url: `http://${addr.address}:${addr.port}`,
    close: () => new Promise(resolve => {
      loop.disable()
      server.close(() => resolve())
      server.closeIdleConnections()
    })
  }
}

/** With no token configured everything is allowed (the API listens on loopback by default). */
function authorized (req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true
  const given = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '')
  const want = Buffer.from(token)
  return given.length === want.length && timingSafeEqual(given, want)
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
