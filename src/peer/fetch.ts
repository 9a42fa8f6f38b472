/**
 * `modelswarm fetch`: resolve a version through the seeders, download it from the swarm into an output
 * directory (verified chunk by chunk, resumable), then keep seeding for a while.
 */
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { ChunkStore } from '../chunker/chunk-store.ts'
import { manifestId } from '../chunker/manifest.ts'
import { IntegrityError, InvalidInputError, OriginChangedError, TimeoutError, UntrustedSignerError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { formatModelRef, formatModelVersion, type ModelVersion } from '../model-version.ts'
import { sleep } from '../util/sleep.ts'
import { resolve, resolveFromSeeders, type Bootstrap } from './protocols/resolve/client.ts'
import type { PeerHint } from './protocols/session/codec.ts'
import { SWARM_MSG } from './swarm-log.ts'
import type { AllowList } from './allow-list.ts'
import { asksDht } from './discovery-pacer.ts'
import { refusalReason } from './membership.ts'
import { SEEDER_DIAL_TIMEOUT_MS, type SwarmNode } from './node.ts'
import { startPeerHost, type PeerHost } from './peer-host.ts'
import { verifyLatest, VersionMeta } from './publications.ts'
import { TrustList } from './signed.ts'
import { VersionSwarm, type SwarmStats, type VersionSwarmOptions } from './version-swarm.ts'

/** Defaults of fetch's options; the CLI's options table shows these. */
export const FETCH_DEFAULTS = {
  /** Give up after this long without progress, ms. */
  idleTimeoutMs: 10 * 60_000,
  /** Keep seeding this long after the download completes, ms. */
  lingerMs: 0
} as const

export interface FetchOptions {
  name: string
  /** Undefined fetches the version the seeders call latest. */
  version?: string
  out: string
  /** Seeder multiaddrs, each ending in /p2p/<peer id>. */
  bootstrap: string[]
  /** Seeder peer ids whose signatures are accepted. */
  trust: string[]
  listen?: string[]
  /** Serve and fetch chunks over the TLS-PSK bulk path (libp2p streams otherwise). @default true */
  bulk?: boolean
  /** TCP port of the bulk endpoint; 0 lets the kernel choose. @default 0 */
  bulkPort?: number
  /** This host's libp2p identity (a seeder's --allow-peers may list it). @default a new key per run */
  privateKey?: PrivateKey
  /** The swarm key (swarm-key.ts): only members holding it can connect. @default an open swarm */
  swarmKey?: Uint8Array
  /** Who may connect to this host, and whom it dials; the bootstrap and trusted seeders are always admitted. */
  allow?: AllowList
  /**
   * A running node and host (startPeerHost) shared with the process's other fetches, e.g. one per version in
   * follow mode: the fetch then only adds and removes its own version's swarm and never stops them, and
   * `listen`, `bulk`, `bulkPort`, `privateKey`, `swarmKey` and `allow` are the host's.
   * @default a node and host of the fetch's own, stopped when it ends
   */
  peerHost?: PeerHost
  /**
   * Another revision of the version at `out` (re-published at the origin): replaced while `unfinished` only (a
   * user's output, which may be in use), or `any` (the host cache, whose finished copies are placed as hard
   * links, so earlier outputs keep their bytes). See ChunkStoreOptions.replaceRevision. @default 'unfinished'
   */
  replaceRevision?: 'unfinished' | 'any'
  /** Keep seeding this long after the download completes. @default 0 */
  lingerMs?: number
  /** Give up after this long without a verified chunk (or without finding the version). @default 10 min */
  idleTimeoutMs?: number
  log: Logger
  swarm?: VersionSwarmOptions
  /** Called once the swarm exists, for progress display. */
  onSwarm?: (swarm: VersionSwarm) => void
  /** Called when the model is complete on disk, before lingering. */
  onComplete?: (result: FetchResult) => void
  /**
   * Once the model is complete, keep seeding until the promise this returns settles (in place of
   * `lingerMs`), e.g. while a child process serves the model; a rejection ends the fetch with it.
   */
  seedWhile?: (result: FetchResult) => Promise<unknown>
  signal?: AbortSignal
}

export interface FetchResult {
  name: string
  version: string
  manifestId: string
  bytes: number
  seconds: number
  /** Chunks found on disk from an earlier, interrupted run. */
  resumedChunks: number
  stats: SwarmStats
}

export async function fetchModel (opts: FetchOptions): Promise<FetchResult> {
  const started = Date.now()
  const trust = new TrustList(opts.trust)
  if (trust.size === 0) throw new InvalidInputError('no trusted seeder key: pass --trust <peer id> (printed by `modelswarm seed`) or set MODELSWARM_TRUST')
  if (opts.bootstrap.length === 0) throw new InvalidInputError('no bootstrap address: pass --bootstrap <multiaddr> or set MODELSWARM_BOOTSTRAP')
  const bootstrap = opts.bootstrap.map(parseBootstrap)
  const idleTimeoutMs = opts.idleTimeoutMs ?? FETCH_DEFAULTS.idleTimeoutMs
  const peer = opts.peerHost ?? await startPeerHost(opts)
  const { node, host } = peer
  const log = opts.log.child({ component: 'fetch', peer: node.peerId.toString() })
  let swarm: VersionSwarm | undefined
  let store: ChunkStore | undefined
  try {
    const ref = { name: opts.name, version: opts.version }
    const meta = await resolveFromSeeders(node, bootstrap, ref, items => metaFromItems(items, opts.name, opts.version, trust), {
      dial: (addr, signal) => dialBootstrap(node, addr, signal),
      timeoutMs: idleTimeoutMs,
      dialTimeoutMs: SEEDER_DIAL_TIMEOUT_MS,
      resolveTimeoutMs: 30_000,
      isFinal: err => err instanceof IntegrityError || err instanceof UntrustedSignerError,
      refusal: refusalReason,
      log,
      signal: opts.signal
    })
    const { header } = meta
    store = await ChunkStore.open({ dir: opts.out, header, replaceRevision: opts.replaceRevision ?? 'unfinished' })
    await store.recordHashes([...meta.known.setIndexes()].map(i => [i, meta.hashOf(i)!] as const))
    const resumedChunks = store.resume.resumed
    const { count: chunks, totalSize: bytes } = store.layout
    log.info({ version: formatModelVersion(header), chunks, bytes, resumed: resumedChunks, discarded: store.resume.discarded }, SWARM_MSG.fetching)
    swarm = new VersionSwarm({ components: node, meta, store, role: 'peer', trust, bulk: host.bulkAccess, log, options: opts.swarm })
    host.add(swarm)
    opts.onSwarm?.(swarm)
    // Every chunk already held (a version of empty files, or a run stopped just before finalizing): nothing to wait for.
    const republished = watchRepublished(swarm, () => resolveOnce(node, bootstrap, { name: header.name, version: header.version }, trust), log)
    const done = store.have.complete ? Promise.resolve() : Promise.race([waitComplete(swarm, idleTimeoutMs, opts.signal), republished.changed])
    void done.finally(() => republished.stop()).catch(() => {})
    // The bootstrap seeders are always among those to (re)join: a host whose seeder session dropped must
    // not be left with no one to ask (seen in the lab: no neighbours, never dialed again, exit 5).
    const seeders = bootstrap.map(b => ({ id: b.peer.toString(), addrs: [b.addr] }))
    // The DHT only when the seeders' hints do not do (asksDht); and this host is announced there once it
    // holds a chunk to give (a provider with nothing would be asked in vain): both at every host's start
    // doubled what a seeder's CPU spends on each joining host (README, "The seeder at the start").
    const members = (): Promise<PeerHint[]> => host.findMembers(meta.headerId, AbortSignal.timeout(5000)).catch(() => [])
    const joined = swarm
    swarm.start(async fruitless => asksDht({ fruitless, seederNeighbours: joined.seeders }) ? [...seeders, ...await members()] : seeders)
    for (const b of bootstrap) void swarm.connect(b.peer)
    const provide = (): void => { host.provide(meta.headerId, AbortSignal.timeout(30_000)).catch(err => log.debug({ err: (err as Error).message }, 'DHT provide failed')) }
    if (store.have.count > 0) provide()
    else swarm.once('chunk', provide)
    await done
    const manifest = await store.finalize()
    const result: FetchResult = {
      name: header.name,
      version: header.version,
      manifestId: manifestId(manifest),
      bytes: store.layout.totalSize,
      seconds: (Date.now() - started) / 1000,
      resumedChunks,
      stats: swarm.stats
    }
    opts.onComplete?.(result)
    if (opts.seedWhile !== undefined) await opts.seedWhile(result)
    else if ((opts.lingerMs ?? FETCH_DEFAULTS.lingerMs) > 0) {
      log.info({ lingerMs: opts.lingerMs }, 'download complete; seeding before exit')
      // A stop request while lingering ends the linger, not the (successful) fetch.
      await sleep(opts.lingerMs!, opts.signal).catch(() => {})
    }
    return result
  } finally {
    // A shared host may hold another fetch's swarm under this header id by now: remove only our own.
    if (swarm !== undefined && host.get(swarm.headerId) === swarm) host.remove(swarm.headerId)
    await swarm?.close()
    await store?.close()
    if (opts.peerHost === undefined) await peer.stop()
  }
}

/**
 * The version the bootstrap seeders now call latest for `name` (its signed pointer checked against
 * `trust`), asked through `node` and dialing the seeders as fetch does: what a long-running reader such
 * as the read gateway needs before it knows which version to fetch.
 * @throws NotFoundError when no seeder knows the model, TimeoutError, IntegrityError | UntrustedSignerError
 */
export async function resolveLatest (
  node: SwarmNode, opts: { name: string, bootstrap: string[], trust: TrustList, timeoutMs: number, log: Logger, signal?: AbortSignal }
): Promise<string> {
  const accept = (items: Uint8Array[]): Promise<VersionMeta> => metaFromItems(items, opts.name, undefined, opts.trust)
  const meta = await resolveFromSeeders(node, opts.bootstrap.map(parseBootstrap), { name: opts.name, version: undefined }, accept, {
    dial: (addr, signal) => dialBootstrap(node, addr, signal),
    timeoutMs: opts.timeoutMs,
    dialTimeoutMs: SEEDER_DIAL_TIMEOUT_MS,
    resolveTimeoutMs: 30_000,
    isFinal: err => err instanceof IntegrityError || err instanceof UntrustedSignerError,
    log: opts.log,
    signal: opts.signal
  })
  return meta.header.version
}

/** How often a fetch without a seeder neighbour, or stalled, asks a seeder whether its version is still what it fetches. */
const REPUBLISH_CHECK_MS = 5000

/**
 * Rejects with OriginChangedError when the seeders now publish another header for the version being
 * fetched: the origin re-published it, the seeder withdrew the old content, and what is missing of it
 * will never come. Checked while no seeder is a neighbour or the download is stalled.
 */
function watchRepublished (swarm: VersionSwarm, current: () => Promise<VersionMeta | undefined>, log: Logger): { changed: Promise<never>, stop: () => void } {
  let timer: NodeJS.Timeout | undefined
  const changed = new Promise<never>((_resolve, reject) => {
    timer = setInterval(() => {
      if (swarm.seeders > 0 && swarm.stalledReason === undefined) return
      current().then(meta => {
        if (meta === undefined || meta.headerId === swarm.headerId) return
        reject(new OriginChangedError(`${formatModelVersion(meta.header)} was re-published at the origin while it was being fetched (revision ${swarm.meta.header.revision} → ${meta.header.revision}); verified chunks of the old content are discarded on the next run — rerun to fetch the new content`))
      }, err => log.debug({ err: (err as Error).message }, 'republish check failed'))
    }, REPUBLISH_CHECK_MS)
    timer.unref()
  })
  changed.catch(() => {})
  return { changed, stop: () => clearInterval(timer) }
}

/** One round of asking the bootstrap seeders for NAME@VERSION; undefined when none answers. */
async function resolveOnce (node: SwarmNode, bootstrap: readonly Bootstrap[], ref: ModelVersion, trust: TrustList): Promise<VersionMeta | undefined> {
  for (const b of bootstrap) {
    try {
      return await metaFromItems(await resolve(node, b.peer, ref, AbortSignal.timeout(10_000)), ref.name, ref.version, trust)
    } catch {
      // this seeder does not answer; the next may
    }
  }
  return undefined
}

function waitComplete (swarm: VersionSwarm, idleTimeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout
    const arm = (): void => {
      clearTimeout(timer)
      timer = setTimeout(() => finish(new TimeoutError(`no verified chunk for ${Math.round(idleTimeoutMs / 1000)} s: ${swarm.stalledReason ?? 'no progress'}`)), idleTimeoutMs)
    }
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      swarm.off('chunk', arm)
      swarm.off('fatal', finish)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onAbort = (): void => finish(signal!.reason as Error)
    swarm.on('chunk', arm)
    swarm.once('complete', () => finish())
    swarm.on('fatal', finish)
    signal?.addEventListener('abort', onAbort)
    arm()
  })
}

export async function metaFromItems (items: Uint8Array[], name: string, version: string | undefined, trust: TrustList): Promise<VersionMeta> {
  let rest = items
  let expectedHeaderId: string | undefined
  if (version === undefined) {
    const latest = await verifyLatest(items[0] ?? new Uint8Array(), trust)
    if (latest.name !== name) throw new IntegrityError(`asked for ${name}@latest, got a pointer for ${latest.name}`)
    expectedHeaderId = latest.headerId
    rest = items.slice(1)
  }
  const meta = await VersionMeta.fromSignedHeader(rest[0] ?? new Uint8Array(), trust)
  const wrongVersion = version !== undefined && meta.header.version !== version
  if (meta.header.name !== name || wrongVersion || (expectedHeaderId !== undefined && expectedHeaderId !== meta.headerId)) {
    throw new IntegrityError(`asked for ${formatModelRef({ name, version })}, got a header for ${formatModelVersion(meta.header)}`)
  }
  for (const item of rest.slice(1)) await meta.addSigned(item, trust)
  return meta
}

/**
 * Dials a bootstrap address. A node there that is not the peer the address names fails the Noise
 * handshake with UnexpectedPeerError: an integrity error (exit 4) at once, not a reachability problem to
 * retry until --timeout.
 */
export async function dialBootstrap (node: SwarmNode, addr: string, signal: AbortSignal): Promise<void> {
  try {
    await node.dial(multiaddr(addr), { signal })
  } catch (err) {
    if (isWrongPeer(err)) throw new IntegrityError(`--bootstrap ${addr}: the node there is not the peer the address names (${(err as Error).message}) — use the address the seeder prints at start`, { cause: err })
    throw err
  }
}

/**
 * Noise raises UnexpectedPeerError when the handshake's identity key is not the expected one
 * (@chainsafe/libp2p-noise decodeHandshakePayload); libp2p's upgrader rethrows it as an
 * EncryptionFailedError that keeps only the message.
 */
function isWrongPeer (err: unknown): boolean {
  const e = err as Error
  return e.name === 'UnexpectedPeerError' || (e.name === 'EncryptionFailedError' && /does not match expected remote identity key/.test(e.message))
}

export function parseBootstrap (addr: string): Bootstrap {
  let ma
  try {
    ma = multiaddr(addr)
  } catch (err) {
    throw new InvalidInputError(`--bootstrap ${JSON.stringify(addr)} is not a multiaddr (e.g. /ip4/10.0.0.5/tcp/4001/p2p/12D3KooW…)`, { cause: err })
  }
  const peer = ma.getComponents().findLast(c => c.name === 'p2p')?.value
  if (peer === undefined) throw new InvalidInputError(`--bootstrap ${addr} lacks /p2p/<peer id>: the seeder prints its full address at start`)
  return { peer: peerIdFromStringSafe(peer, addr), addr }
}

function peerIdFromStringSafe (id: string, addr: string): PeerId {
  try {
    return peerIdFromString(id)
  } catch (err) {
    throw new InvalidInputError(`--bootstrap ${addr}: invalid peer id`, { cause: err })
  }
}

