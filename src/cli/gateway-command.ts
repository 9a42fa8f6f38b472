/** `modelswarm gateway`: the read-only S3-compatible endpoint over the host cache. */
import { InvalidInputError } from '../errors.ts'
import { readAccessKeys } from '../gateway/access-keys.ts'
import { startGateway } from '../gateway/gateway-server.ts'
import { VersionCatalog } from '../gateway/version-catalog.ts'
import { createLogger } from '../log.ts'
import { resolveLatest } from '../peer/fetch.ts'
import { startPeerHost } from '../peer/peer-host.ts'
import { TrustList } from '../peer/signed.ts'
import { withCleanup } from '../util/cleanup.ts'
import { untilSignal } from './signals.ts'

export interface GatewayCommandOptions {
  gatewayListen: string
  keysFile?: string
  anonymous: boolean
  cacheDir: string
  bootstrap: string[]
  trust: string[]
  listen: string[]
  linger: number
  timeout: number
  bulk: boolean
  bulkPort: number
  json: boolean
  logLevel: string
}

export async function runGateway (opts: GatewayCommandOptions): Promise<void> {
  const log = createLogger({ level: opts.logLevel }).child({ component: 'gateway' })
  if (opts.keysFile === undefined && !opts.anonymous) throw new InvalidInputError('the gateway needs access keys (--keys-file) or explicit anonymous access (--anonymous)')
  const keys = opts.keysFile === undefined ? new Map<string, string>() : await readAccessKeys(opts.keysFile)
  const trust = new TrustList(opts.trust)
  const stop = new AbortController()
  await withCleanup(async defer => {
    const { bootstrap, listen, bulk, bulkPort } = opts
    // One node, host and bulk endpoint for every fetch the gateway starts (several versions may fetch or linger
    // at once on the same --listen and --bulk-port), and for asking the seeders what `latest` is.
    const peerHost = await startPeerHost({ bootstrap, trust: opts.trust, listen, bulk, bulkPort, log })
    defer(() => peerHost.stop())
    const catalog = new VersionCatalog({
      cacheDir: opts.cacheDir,
      fetch: { bootstrap, trust: opts.trust, peerHost, lingerMs: opts.linger, idleTimeoutMs: opts.timeout },
      // A request waits for `latest` at most 30 s, however long --timeout lets a fetch go without progress.
      resolveLatest: name => resolveLatest(peerHost.node, { name, bootstrap, trust, timeoutMs: Math.min(opts.timeout, 30_000), log, signal: stop.signal }),
      log,
      signal: stop.signal
    })
    defer(() => catalog.close())
    defer(() => stop.abort(new Error('gateway stopping')))
    const server = await startGateway(opts.gatewayListen, { catalog, keys, anonymous: opts.anonymous, log })
    defer(() => server.close())
    if (opts.json) process.stdout.write(JSON.stringify({ gateway: server.url, cacheDir: opts.cacheDir, accessKeys: keys.size, anonymous: opts.anonymous }) + '\n')
    else process.stdout.write(`modelswarm read gateway: ${server.url} (S3 path-style; bucket = model, key = VERSION/path or latest/path) over ${opts.cacheDir}\n`)
    log.info({ url: server.url, cacheDir: opts.cacheDir, accessKeys: keys.size, anonymous: opts.anonymous }, 'gateway started')
    const signal = await untilSignal()
    log.info({ signal }, 'stopping')
  })
}
