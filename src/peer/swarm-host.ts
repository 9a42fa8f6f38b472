/**
 * The protocol handlers of one node and the versions it takes part in: routes session and chunk
 * requests to the right version's swarm, answers resolve requests, runs the TLS bulk endpoint, and
 * wraps the DHT (one provider key per version).
 */
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Logger } from '../log.ts'
import type { SwarmNode } from './node.ts'
import { BulkServer } from './protocols/chunk/bulk-server.ts'
import type { ChunkLookup } from './protocols/chunk/codec.ts'
import { MAX_INBOUND_CHUNK_STREAMS, CHUNK_PROTOCOL } from './protocols/chunk/constants.ts'
import { serveChunkStream } from './protocols/chunk/handler.ts'
import { MAX_INBOUND_RESOLVES, RESOLVE_PROTOCOL } from './protocols/resolve/constants.ts'
import { handleResolve, type Resolver } from './protocols/resolve/handler.ts'
import type { PeerHint } from './protocols/session/codec.ts'
import { MAX_INBOUND_SESSIONS, SESSION_PROTOCOL } from './protocols/session/constants.ts'
import { acceptSession } from './protocols/session/handler.ts'
import type { BulkAccess, VersionSwarm } from './version-swarm.ts'

export type { Resolver }

/** Providers gathered per DHT lookup: enough neighbours to start with. */
const MAX_MEMBERS_FOUND = 64

export class SwarmHost {
  readonly node: SwarmNode
  readonly #swarms = new Map<string, VersionSwarm>()
  readonly #log: Logger
  #resolver: Resolver = () => undefined
  #bulk: BulkServer | undefined

  constructor (node: SwarmNode, log: Logger) {
    this.node = node
    this.#log = log
  }

  /**
   * Registers the protocol handlers; with `bulk`, also opens the TLS bulk endpoint on those IPs and
   * port (the data path; libp2p streams remain the fallback).
   */
  async start (opts: { bulk?: { hosts: readonly string[], port: number, admit?: (ip: string | undefined) => boolean } } = {}): Promise<void> {
    const lookup: ChunkLookup = (peer, req) => this.#swarms.get(req.headerId)?.serve(peer, req.index, req.failedHolders, req.urgent, req.held) ?? { status: 'missing' }
    if (opts.bulk !== undefined) {
      this.#bulk = new BulkServer(lookup, this.#log, opts.bulk.admit)
      await this.#bulk.listen(opts.bulk.hosts, opts.bulk.port)
    }
    await this.node.handle(SESSION_PROTOCOL, (stream, conn) => acceptSession(stream, conn, headerId => {
      const swarm = this.#swarms.get(headerId)
      if (swarm === undefined) return undefined
      return { role: swarm.role, chunkCount: swarm.store.layout.count, attach: s => swarm.attach(s), accepts: peer => swarm.acceptsInbound(peer) }
    }, this.#log), { maxInboundStreams: MAX_INBOUND_SESSIONS })
    await this.node.handle(CHUNK_PROTOCOL, (stream, conn) => serveChunkStream(stream, conn, lookup), { maxInboundStreams: MAX_INBOUND_CHUNK_STREAMS })
    await this.node.handle(RESOLVE_PROTOCOL, stream => handleResolve(stream, this.#resolver), { maxInboundStreams: MAX_INBOUND_RESOLVES })
  }

  setResolver (r: Resolver): void { this.#resolver = r }

  /** What version swarms use to grant neighbours access to the bulk endpoint, if it runs. */
  get bulkAccess (): BulkAccess | undefined { return this.#bulk }

  async stop (): Promise<void> {
    await this.#bulk?.close()
  }

  add (swarm: VersionSwarm): void {
    this.#swarms.set(swarm.headerId, swarm)
  }

  remove (headerId: string): void {
    this.#swarms.delete(headerId)
  }

  get (headerId: string): VersionSwarm | undefined { return this.#swarms.get(headerId) }

  /** The first swarm held that `pred` accepts. */
  find (pred: (swarm: VersionSwarm) => boolean): VersionSwarm | undefined {
    return [...this.#swarms.values()].find(pred)
  }

  /** Announces this node as a member of the version's swarm in the DHT. */
  async provide (headerId: string, signal?: AbortSignal): Promise<void> {
    await this.node.contentRouting.provide(await versionCid(headerId), { signal })
  }

  /** Members of the version's swarm found through the DHT. */
  async findMembers (headerId: string, signal?: AbortSignal): Promise<PeerHint[]> {
    const out: PeerHint[] = []
    const self = this.node.peerId.toString()
    for await (const p of this.node.contentRouting.findProviders(await versionCid(headerId), { signal })) {
      if (p.id.toString() !== self) out.push({ id: p.id.toString(), addrs: p.multiaddrs.map(a => a.toString()) })
      if (out.length >= MAX_MEMBERS_FOUND) break
    }
    return out
  }
}

/** The DHT key of a version: one per version, never one per chunk. */
export async function versionCid (headerId: string): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(Buffer.from(`modelswarm/version/${headerId}`)))
}
