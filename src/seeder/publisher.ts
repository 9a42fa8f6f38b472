/**
 * What the seeder says about the versions it holds, signed with its key: each version's header as soon
 * as it is admitted, hash batches as chunks arrive, the completion once every chunk is in, and the
 * `latest` pointer per model; plus the answer to resolve requests from all of it.
 */
import type { PrivateKey } from '@libp2p/interface'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import type { ManifestHeader } from '../chunker/manifest.ts'
import { formatModelVersion, type ModelRef } from '../model-version.ts'
import { signComplete, signHashes, signHeader, signLatest, VersionMeta } from '../peer/publications.ts'
import type { Signed } from '../peer/signed.ts'
import type { VersionSwarm } from '../peer/version-swarm.ts'
import { compareVersions } from './retention.ts'

/** What the publisher needs of a held version. */
export interface Published {
  readonly meta: VersionMeta
  readonly store: ChunkStore
  readonly swarm: VersionSwarm
}

/** How long a chunk's hash may wait for others to share its signature: well under a chunk's transfer time. */
const BATCH_MS = 20
/** Hashes per batch when a completed version's batches are re-signed as few: 2.4 MB, under the session's 8 MiB frame. */
const COMPACT_BATCH = 65536

export class Publisher {
  readonly #key: PrivateKey
  /** Per model, the newest version's signed pointer. */
  readonly #latest = new Map<string, { version: string, headerId: string, signed: Uint8Array }>()

  constructor (key: PrivateKey) {
    this.#key = key
  }

  /** Signs a version's header, and the hashes of the chunks the store already holds (a resumed pull). */
  async header (header: ManifestHeader, store: ChunkStore): Promise<VersionMeta> {
    const meta = VersionMeta.fromOwnHeader(header, await signHeader(header, this.#key))
    const held = [...store.have.setIndexes()].map(i => [i, store.hashOf(i)!] as const)
    if (held.length > 0) meta.addOwn(await signHashes(meta.headerId, held, this.#key))
    return meta
  }

  /**
   * A sink for chunks as a pull stores them: chunks finishing within BATCH_MS share one signature and
   * one message, signed, added to the version's metadata, relayed and announced. One per chunk made a
   * version of 5,000 small files 5,000 signatures, each verified by every host (1.9 of its 8 CPU-s).
   * `flushed()` resolves once everything handed in so far is out.
   */
  hashBatcher (v: Published): { onChunk: (index: number, digest: Uint8Array) => void, flushed: () => Promise<void> } {
    let pending: Array<readonly [number, Uint8Array]> = []
    let flushing: Promise<void> = Promise.resolve()
    let timer: NodeJS.Timeout | undefined
    const flush = (): void => {
      const batch = pending
      pending = []
      flushing = flushing.then(async () => {
        const signed = await signHashes(v.meta.headerId, batch, this.#key)
        const fresh = v.meta.addOwn(signed)
        v.swarm.broadcastSigned(signed.bytes, fresh)
        v.swarm.announceHave(batch.map(([i]) => i))
      })
      // A failure surfaces from flushed(); a pull that failed before calling it must not leave it unhandled.
      flushing.catch(() => {})
    }
    return {
      onChunk: (index, digest) => {
        if (pending.length === 0) timer = setTimeout(flush, BATCH_MS)
        pending.push([index, digest])
      },
      flushed: () => {
        clearTimeout(timer)
        if (pending.length > 0) flush()
        return flushing
      }
    }
  }

  /** Finalizes a fully held version and publishes its signed completion (the manifest id). */
  async complete (v: Published): Promise<void> {
    const manifest = await v.store.finalize()
    const signed = await signComplete(manifest, this.#key)
    v.meta.addOwn(signed)
    v.swarm.broadcastSigned(signed.bytes, [])
    v.swarm.revealAll()
    const all = manifest.chunks.map((h, i) => [i, h] as const)
    const batches: Signed[] = []
    for (let i = 0; i < all.length; i += COMPACT_BATCH) batches.push(await signHashes(v.meta.headerId, all.slice(i, i + COMPACT_BATCH), this.#key))
    v.meta.compactOwn(batches)
  }

  /**
   * Points `latest` of `name` at the newest of `versions` (its held versions), signing a new pointer
   * when it moved. Returns the version it now points at (undefined when the model has none left) and
   * whether it moved.
   */
  async updateLatest (name: string, versions: ReadonlyMap<string, Published>): Promise<{ version: string | undefined, moved: boolean }> {
    const newest = [...versions.values()].map(v => v.meta.header).filter(h => h.name === name).map(h => h.version).sort(compareVersions).at(-1)
    if (newest === undefined) {
      this.#latest.delete(name)
      return { version: undefined, moved: false }
    }
    const v = versions.get(formatModelVersion({ name, version: newest }))!
    // The same version may come back as another revision (re-published at the origin): the pointer names a header.
    const current = this.#latest.get(name)
    if (current?.version === newest && current.headerId === v.meta.headerId) return { version: newest, moved: false }
    const signed = await signLatest({ name, version: newest, headerId: v.meta.headerId, publishedAt: new Date().toISOString() }, this.#key)
    this.#latest.set(name, { version: newest, headerId: v.meta.headerId, signed: signed.bytes })
    return { version: newest, moved: true }
  }

  /** Signed items for a request, latest pointer first when the newest was asked for; undefined if not held. */
  resolve (ref: ModelRef, versions: ReadonlyMap<string, Published>): { version: string, items: Uint8Array[] } | undefined {
    const latest = ref.version === undefined ? this.#latest.get(ref.name) : undefined
    const version = ref.version ?? latest?.version
    if (version === undefined) return undefined
    const v = versions.get(formatModelVersion({ name: ref.name, version }))
    if (v === undefined) return undefined
    return { version, items: latest === undefined ? [...v.meta.signedItems()] : [latest.signed, ...v.meta.signedItems()] }
  }
}
