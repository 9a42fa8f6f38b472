/**
 * Upload admission for one version: whether to serve a chunk request now, and the bookkeeping of what
 * was served. Every node uploads what it holds, up to `maxUploads` at once; a seeder also asks its upload
 * gate (super-seeding, src/seeder/upload-policy.ts), which may refuse and name holders instead. The
 * swarm simulator (src/sim/host-model.ts) admits its uploads here too.
 */
import type { Bitfield } from '../chunker/bitfield.ts'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import { take, type TokenBucket } from '../util/token-bucket.ts'
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

/** What admission reads of the store: the chunks held, their lengths, their bytes (ChunkStore; the simulator passes its own). */
export interface ServableChunks {
  readonly have: Bitfield
  readonly layout: { readonly count: number, readonly length: ArrayLike<number> }
  readonly header: { readonly chunkSize: number }
  readRange: ChunkStore['readRange']
}

export interface UploadAdmissionInit {
  store: ServableChunks
  gate?: UploadGate
  /** Concurrent uploads. */
  maxUploads: number
  isBanned: (peer: string) => boolean
  now: () => number
  stats: UploadStats
  /** Caps upload bytes per second (`fetch --upload-rate`); may be shared by several swarms of one process. */
  budget?: TokenBucket
}

/** Uploads at once whatever their size: bounds per-upload overhead when chunks are tiny. */
const MAX_SMALL_UPLOADS = 64

/**
 * Under an upload cap, a request that would wait longer than this for budget is answered busy, so the
 * requester asks another holder instead of idling towards its request timeout (20 s) behind a queue.
 */
const MAX_BUDGET_WAIT_MS = 2000

export class UploadAdmission {
  readonly #init: UploadAdmissionInit
  #uploads = 0
  /** Uploads in progress weighed by their share of a full chunk. */
  #load = 0

  constructor (init: UploadAdmissionInit) {
    this.#init = init
  }

  /** Uploads in progress. */
  get active (): number { return this.#uploads }

  /**
   * Admission for one chunk request from `peer`; `failedHolders` are peers it tried in vain. Uploads are
   * weighed by size: `maxUploads` full chunks at once, and small chunks (small files) by their share of
   * one, up to MAX_SMALL_UPLOADS at once — what an upload holds is two slices of at most its own length.
   * `gated: false` skips the gate (another seeder asking: no host to send it to, nothing to mark pending).
   */
  serve (peer: string, index: number, failedHolders: readonly string[] = [], gated = true): ServeDecision {
    const { store, gate, stats } = this.#init
    if (this.#init.isBanned(peer) || index >= store.layout.count || !store.have.has(index)) return { status: 'missing' }
    const length = store.layout.length[index]!
    const weight = Math.min(1, length / store.header.chunkSize)
    if (this.#load + weight > this.#init.maxUploads || this.#uploads >= MAX_SMALL_UPLOADS) return { status: 'busy' }
    const budget = this.#init.budget
    if (budget !== undefined && budget.reserve(0, budget.now()) > MAX_BUDGET_WAIT_MS) return { status: 'busy' }
    const verdict = gated ? gate?.decide(peer, index, this.#init.now(), failedHolders) : undefined
    if (verdict !== undefined && !verdict.serve) return { status: 'refused', holders: verdict.holders }
    this.#uploads++
    this.#load += weight
    let sent = 0
    const done = (): void => {
      this.#uploads--
      this.#load -= weight
    }
    return {
      status: 'ok',
      length,
      read: budget === undefined
        ? (offset, n, into) => store.readRange(index, offset, n, into)
        : async (offset, n, into) => { await take(budget, n); return await store.readRange(index, offset, n, into) },
      onSent: bytes => {
        sent += bytes
        stats.bytesUp += bytes
        gate?.served(index, bytes)
        if (sent === length) {
          stats.chunksUp++
          done()
        }
      },
      onEnd: () => { if (sent !== length) done() }
    }
  }
}
