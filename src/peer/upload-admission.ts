/**
 * Upload admission for one version: whether to serve a chunk request now, and the bookkeeping of what
 * was served. Every node uploads what it holds, up to `maxUploads` at once; a seeder also asks its upload
 * gate (super-seeding, src/seeder/upload-policy.ts), which may refuse and name holders instead.
 */
import type { Bitfield } from '../chunker/bitfield.ts'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import type { ServeDecision } from './protocols/chunk/codec.ts'

/** The seeder's say over its own upload (src/seeder/upload-policy.ts implements it). */
export interface UploadGate {
  decide: (peer: string, index: number, now: number, failedHolders: readonly string[]) => { serve: true } | { serve: false, holders: string[] }
  served: (index: number, bytes: number) => void
  peerHas: (peer: string, index: number) => void
  peerBitfield: (peer: string, bits: Bitfield) => void
  peerGone: (peer: string) => void
}

/** Upload counters, shared with the swarm's stats. */
export interface UploadStats { bytesUp: number, chunksUp: number }

export interface UploadAdmissionInit {
  store: ChunkStore
  gate?: UploadGate
  /** Concurrent uploads. */
  maxUploads: number
  isBanned: (peer: string) => boolean
  now: () => number
  stats: UploadStats
}

export class UploadAdmission {
  readonly #init: UploadAdmissionInit
  #uploads = 0

  constructor (init: UploadAdmissionInit) {
    this.#init = init
  }

  /** Uploads in progress. */
  get active (): number { return this.#uploads }

  /** Admission for one chunk request from `peer`; `failedHolders` are peers it tried in vain. */
  serve (peer: string, index: number, failedHolders: readonly string[] = []): ServeDecision {
    const { store, gate, stats } = this.#init
    if (this.#init.isBanned(peer) || index >= store.layout.count || !store.have.has(index)) return { status: 'missing' }
    if (this.#uploads >= this.#init.maxUploads) return { status: 'busy' }
    const verdict = gate?.decide(peer, index, this.#init.now(), failedHolders)
    if (verdict !== undefined && !verdict.serve) return { status: 'refused', holders: verdict.holders }
    this.#uploads++
    let sent = 0
    const length = store.layout.length[index]!
    return {
      status: 'ok',
      length,
      read: (offset, n, into) => store.readRange(index, offset, n, into),
      onSent: bytes => {
        sent += bytes
        stats.bytesUp += bytes
        gate?.served(index, bytes)
        if (sent === length) {
          stats.chunksUp++
          this.#uploads--
        }
      },
      onEnd: () => { if (sent !== length) this.#uploads-- }
    }
  }
}
