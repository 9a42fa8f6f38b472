/**
 * Protocol handlers of one node and the versions it takes part in. Routes session and chunk streams to
 * the right version's swarm, answers resolve requests, and wraps the DHT: one provider key per version.
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { NotFoundError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { formatModelRef } from '../model-version.ts'
import { serveChunkStream } from './chunk-transfer.ts'
import type { SwarmNode } from './node.ts'
import { CHUNK_PROTOCOL, MAX_RESOLVE_FRAME, RESOLVE_PROTOCOL, SESSION_PROTOCOL } from './protocols.ts'
import { readHello, sendHello, Session } from './session.ts'
import type { PeerHint } from './session-messages.ts'
import { closeGracefully, sendFrame, streamReader } from './stream-io.ts'
import { BulkServer } from './bulk-transfer.ts'
import type { BulkAccess, VersionSwarm } from './version-swarm.ts'

/** What a node can say about NAME@VERSION: signed items, latest pointer first when asked for latest. */
export type Resolver = (name: string, version: string | undefined) => Uint8Array[] | undefined

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
   * Registers the protocol handlers; with `bulkHost`, also opens the TLS bulk endpoint on that address
   * (the data path; libp2p streams remain the fallback).
   */
  async start (opts: { bulkHost?: string } = {}): Promise<void> {
    const idleMs = 30_000
    if (opts.bulkHost !== undefined) {
      this.#bulk = new BulkServer((peer, headerId, index, failed) => this.#swarms.get(headerId)?.serve(peer, index, failed) ?? { status: 'missing' }, this.#log)
      await this.#bulk.listen(opts.bulkHost)
    }
    await this.node.handle(SESSION_PROTOCOL, (stream, conn) => this.#onSession(stream, conn), { maxInboundStreams: 1024 })
    await this.node.handle(CHUNK_PROTOCOL, (stream, conn) => serveChunkStream(stream, conn, (peer, headerId, index, failed) =>
      this.#swarms.get(headerId)?.serve(peer.toString(), index, failed) ?? { status: 'missing' }, idleMs), { maxInboundStreams: 256 })
    await this.node.handle(RESOLVE_PROTOCOL, stream => this.#onResolve(stream), { maxInboundStreams: 64 })
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
      if (out.length >= 64) break
    }
    return out
  }

  /** Asks `peer` for the signed items of NAME@VERSION (or NAME@latest when version is undefined). */
  async resolve (peer: PeerId, name: string, version: string | undefined, signal?: AbortSignal): Promise<Uint8Array[]> {
    const stream = await this.node.dialProtocol(peer, RESOLVE_PROTOCOL, { signal })
    try {
      await sendFrame(stream, Buffer.from(JSON.stringify({ name, version })))
      const reader = streamReader(stream, 30_000)
      const head = await reader.readFrame(4096)
      const { found, count } = JSON.parse(Buffer.from(head ?? []).toString('utf8') || '{}') as { found?: boolean, count?: number }
      if (found !== true || typeof count !== 'number') throw new NotFoundError(`${peer.toString()} does not know ${formatModelRef({ name, version })}`)
      const items: Uint8Array[] = []
      for (let i = 0; i < count; i++) {
        const f = await reader.readFrame(MAX_RESOLVE_FRAME)
        if (f === undefined) throw new NotFoundError('resolve answer ended early')
        items.push(f)
      }
      await stream.close().catch(() => {})
      return items
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  async #onSession (stream: Stream, conn: Connection): Promise<void> {
    try {
      const hello = await readHello(stream)
      const swarm = this.#swarms.get(hello.headerId)
      if (swarm === undefined) {
        await stream.close()
        return
      }
      await sendHello(stream, swarm.headerId, swarm.role)
      swarm.attach(new Session(stream, hello.reader, conn.remotePeer, hello.role, swarm.store.layout.count))
    } catch (err) {
      this.#log.debug({ peer: conn.remotePeer.toString(), err: (err as Error).message }, 'inbound session failed')
      stream.abort(err as Error)
    }
  }

  async #onResolve (stream: Stream): Promise<void> {
    try {
      const reader = streamReader(stream, 30_000)
      const req = JSON.parse(Buffer.from(await reader.readFrame(4096) ?? []).toString('utf8')) as { name?: unknown, version?: unknown }
      const items = typeof req.name === 'string' && (req.version === undefined || req.version === null || typeof req.version === 'string')
        ? this.#resolver(req.name, req.version ?? undefined)
        : undefined
      await sendFrame(stream, Buffer.from(JSON.stringify(items === undefined ? { found: false } : { found: true, count: items.length })))
      for (const item of items ?? []) await sendFrame(stream, item)
      await closeGracefully(stream)
    } catch (err) {
      stream.abort(err as Error)
    }
  }
}

/** The DHT key of a version: one per version, never one per chunk. */
export async function versionCid (headerId: string): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(Buffer.from(`modelswarm/version/${headerId}`)))
}
