/** `modelswarm seed`: the seeder daemon. */
import { join } from 'node:path'
import { createLogger } from '../log.ts'
import { createNode } from '../peer/node.ts'
import { SwarmHost } from '../peer/swarm-host.ts'
import { startAdminServer } from '../seeder/admin-server.ts'
import { loadOrCreateKey } from '../seeder/identity.ts'
import { LocalDirOrigin } from '../seeder/local-origin.ts'
import { Seeder } from '../seeder/seeder.ts'
import { untilSignal } from './signals.ts'

export interface SeedCommandOptions {
  origin: string
  cacheDir: string
  listen: string[]
  lineRate?: number
  pollInterval: number
  parallelReads: number
  chunkSize?: number
  admin: string
  json: boolean
  logLevel: string
}

export async function runSeed (opts: SeedCommandOptions): Promise<void> {
  const log = createLogger({ level: opts.logLevel })
  const { key, created } = await loadOrCreateKey(join(opts.cacheDir, 'identity.key'))
  const node = await createNode({ privateKey: key, listen: opts.listen, dhtServer: true })
  const host = new SwarmHost(node, log)
  await host.start()
  const seeder = new Seeder({
    origin: new LocalDirOrigin(opts.origin),
    cacheDir: opts.cacheDir,
    key,
    host,
    log,
    lineRate: opts.lineRate,
    pollIntervalMs: opts.pollInterval,
    parallelReads: opts.parallelReads,
    chunkSize: opts.chunkSize
  })
  await seeder.start()
  const admin = await startAdminServer(seeder, opts.admin)
  const peerId = node.peerId.toString()
  const addrs = node.getMultiaddrs().map(a => a.toString())
  if (opts.json) process.stdout.write(JSON.stringify({ peerId, addrs, admin: admin.url, keyCreated: created }) + '\n')
  else {
    process.stdout.write(`modelswarm seeder ${created ? '(new identity)' : ''}
  trust key  (fetch --trust):     ${peerId}
  bootstrap  (fetch --bootstrap): ${addrs.join(' ')}
  admin:                          ${admin.url}/v1/models
`)
  }
  log.info({ peerId, addrs, admin: admin.url, origin: opts.origin }, 'seeder started')
  const signal = await untilSignal()
  log.info({ signal }, 'stopping')
  await admin.close()
  await seeder.stop()
  await node.stop()
}
