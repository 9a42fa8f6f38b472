/**
 * The decisions of one node's download, apart from moving bytes: which chunks to ask which neighbour for
 * now (the piece picker, within the request and memory budgets), and what each outcome of a request means
 * for the next ones (a failure or a 'missing' counts against that holder and is told to seeders; 'busy'
 * is left alone for a moment; a refusal names holders to dial, and if they cannot be reached the seeder is asked
 * again at once; requests without progress time out). It owns the piece picker.
 *
 * Two drivers carry its decisions out: the download scheduler (download-scheduler.ts) over the network
 * and the chunk store, and the swarm simulator (src/sim/host-model.ts) as simulated flows, so the
 * simulator runs the same rules as a real node. Pure: the caller passes the time, the Rng is injected.
 *
 * A request's life, as the driver reports it: `fill` starts it; then `failed`, `answered` or `received`
 * (the data arrived), or `released` (the driver aborted it); after `received`, `written` or `rejected`
 * (bad bytes) or `released` (the write failed). Bytes are counted against the budgets from `fill` until
 * the request or its write ends.
 */
import type { Bitfield } from '../chunker/bitfield.ts'
import type { Rng } from '../util/random.ts'
import { PiecePicker, type PeerRequest, type PiecePickerInit } from './piece-picker.ts'

/**
 * Neighbours a host may dial above its limit, one per refusal, for the holders a seeder names: it asks a
 * seeder only for chunks no neighbour holds, so those holders are hardly ever its neighbours, and at the limit the
 * refusal only made it wait (retryAfterMs) and ask again, until served. Simulated (seeds 1–8, warm and cold,
 * last ÷ bound): N = 32 at the lab's eighth rates 0 → 1.195 ×, 4 → 1.176 ×, 8 → 1.183 ×; N = 16 at the
 * quarter rates 1.148 → 1.140 ×; N = 1,000, 100 GiB, cold 1.16 → 1.17 ×.
 */
export const HINTED_ABOVE_LIMIT = 4

/** What dialNamedHolders needs of the neighbour set (Neighbours, or the simulator's host). */
export interface NamedHolderDialer {
  /** Below the neighbour limit, or `extra` above it. */
  wantMore: (extra?: number) => boolean
  isNeighbour: (peer: string) => boolean
  dial: (peer: string) => void
}

/**
 * Dials the holders a refusal names (DownloadPlanner#answered): each while below the neighbour limit; at
 * it, one not yet a neighbour, up to HINTED_ABOVE_LIMIT above it — for a seeder's refusal only, as a peer's
 * could name anyone and take those places for good. Shared by DownloadScheduler and the simulator.
 */
export function dialNamedHolders (named: readonly string[], fromSeeder: boolean, n: NamedHolderDialer, aboveLimit = HINTED_ABOVE_LIMIT): void {
  let above = !fromSeeder
  for (const h of named) {
    if (n.wantMore()) n.dial(h)
    else if (!above && n.wantMore(aboveLimit) && !n.isNeighbour(h)) {
      above = true
      n.dial(h)
    }
  }
}

export type { PeerRequest }

export interface PlannerOptions {
  /** Concurrent chunk requests to one peer (counted in full chunks' bytes). */
  maxRequestsPerPeer: number
  /** Memory for chunks being received (each is verified whole before it is written), in bytes; see receiveBudgetBytes. */
  maxBufferedBytes: number
  /** A request without progress for twice this long is given up, in ms. */
  requestIdleMs: number
}

/** A neighbour's answer other than the chunk itself. */
export type PlannerAnswer = { status: 'missing' } | { status: 'busy' } | { status: 'refused', holders: readonly string[] }

export interface DownloadPlannerInit {
  chunkSize: number
  /** Each chunk's length in bytes (a file's last chunk, or a small file's only one, is short). */
  lengths: ArrayLike<number>
  /** Chunks held already. */
  have: Bitfield
  /** Chunks whose hash is known so far. */
  known: Bitfield
  rng: Rng
  options: PlannerOptions
  /** Picker options the simulator sweeps; the defaults are the picker's. */
  picker?: Pick<PiecePickerInit, 'endgameThreshold' | 'retryAfterMs'>
  /** How soon a peer that answered busy is asked again, in ms. @default 250 */
  busyRetryMs?: number
  /**
   * What a busy answer holds back for busyRetryMs: the `peer` (nothing is asked of it, and the chunk may
   * go to another peer at once) or only that `chunk` on that peer. @default 'peer'
   */
  busyBackoff?: 'peer' | 'chunk'
}

/**
 * Requests for other chunks a host keeps in flight while a reader waits on chunks it lacks: it still takes
 * rare chunks and so still has something to serve, but leaves its sources' upload links to the chunks the
 * reader waits on — which every other host reading the same shard waits on too. Lab, shard scenario
 * (N = 16, every host reading the first of 10 shards at once): a first-shard request took 0.2–12.6 s while
 * hosts fetched the rest of the model alongside.
 */
const OTHERS_WHILE_READING = 2
/**
 * Chunks' worth of bytes a host has in flight at once, at most (a reader's and an endgame's included): the
 * memory budget (maxBufferedBytes) allowed 256 requests of 128 KiB. Lab, N = 32 at the eighth rates (u 3.125,
 * d 12.5, u_s 6.25 Mbit/s, F = 32 MiB; debug logs): a host's downlink carried 20–60 transfers at once, a
 * 128 KiB chunk took 1.8 s (p50) to 25 s (p90) to arrive, 124 MiB of the 1 GiB moved belonged to requests
 * aborted, and the seeder served 134 chunks again while their first copy still crawled (egress 1.77 F). With
 * 16: 13 s at p90, 21 MiB aborted, egress 1.21 F, last host 1.58 × the bound (1.59–1.63 before); with 8:
 * egress 1.19 F, 1.64 ×. N = 16 at the quarter rates, BitTorrent in the same run: warm 1.35 ×, cold 1.40 ×
 * (÷ BitTorrent 0.94 / 0.98), egress 1.05 / 1.07 F. Simulated, seeds 1–8, warm and cold (the simulator
 * shares links fairly, so it never saw the crawl): N = 16 at the quarter rates 1.140 → 1.134 ×, N = 32 at the
 * eighth rates 1.176 → 1.186 ×.
 */
const CHUNKS_IN_FLIGHT = 16

/**
 * Bytes of chunks a host receives at once (requested, or verified and written), at most: the memory budget
 * `maxBufferedBytes`, within CHUNKS_IN_FLIGHT chunks, and at least two chunks. Shared by the planner's
 * budget, the scheduler's receive buffers and the simulator's report.
 */
export function receiveBudgetBytes (maxBufferedBytes: number, chunkSize: number): number {
  return Math.max(2 * chunkSize, Math.min(maxBufferedBytes, CHUNKS_IN_FLIGHT * chunkSize))
}

/** Requests in flight to one peer, and in all, whatever their size: bounds per-request overhead for tiny chunks. */
const MAX_REQUESTS_PER_PEER = 64
const MAX_REQUESTS = 256
/**
 * A busy peer had no upload slot free at that instant. It is left alone as a whole: blocking only the
 * chunk let a host ask the same busy seeder for its next chunk at once, one round trip each — simulated,
 * 1,000 hosts starting cold drew 516,000 busy answers from the seeder in the first 5 s (npm run simulate,
 * docs/simulator.md).
 */
export const BUSY_RETRY_MS = 250

export class DownloadPlanner {
  readonly #init: DownloadPlannerInit
  readonly #picker: PiecePicker
  readonly #busyRetryMs: number
  readonly #seeders = new Set<string>()
  /** Peers that answered busy → when they may be asked again. */
  readonly #busyUntil = new Map<string, number>()
  /**
   * Requests a peer takes at once, learnt from its busy answers (absent: maxRequestsPerPeer): a busy
   * answer while other requests to it are still in flight sets it to those, each chunk received from it
   * adds one back.
   */
  readonly #window = new Map<string, number>()
  /** Per chunk, non-seeder peers whose request for it failed: told to seeders so they stop naming them. */
  readonly #failedHolders = new Map<number, Set<string>>()
  /**
   * Holders a seeder's refusal named: peer → the chunks and who named it for them. Kept once the holder
   * joins, for it may still turn out a staller (the slow-peer rule pauses it: holderUnreachable).
   */
  readonly #hinted = new Map<string, Array<{ index: number, seeder: string }>>()
  /** Requests started and not yet answered, and chunks received and being verified and written. */
  #requests = 0
  #writing = 0
  /** Bytes of chunks requested and not yet written (in flight or being written), in all and per peer. */
  #bytesInFlight = 0
  readonly #peerBytes = new Map<string, number>()

  constructor (init: DownloadPlannerInit) {
    this.#init = init
    this.#busyRetryMs = init.busyRetryMs ?? BUSY_RETRY_MS
    this.#picker = new PiecePicker({ numChunks: init.lengths.length, have: init.have, rng: init.rng, ...init.picker })
    for (const i of init.known.setIndexes()) this.#picker.setAvailable(i)
  }

  /** Chunks not yet verified. */
  get remaining (): number { return this.#picker.remaining }
  /** Requests in flight plus chunks being written. */
  get active (): number { return this.#requests + this.#writing }
  /** How long a busy peer is left alone (or its chunk, with busyBackoff 'chunk'), in ms: a driver fills again after it. */
  get busyRetryMs (): number { return this.#busyRetryMs }
  /** Whether the memory and request budgets leave room for one more full chunk. */
  get hasRoom (): boolean { return this.#room(0, 0) > 0 }

  setAvailable (index: number): void { this.#picker.setAvailable(index) }
  /** See PiecePicker.setPriority. */
  setPriority (index: number, priority: number): void { this.#picker.setPriority(index, priority) }
  /** A reader waits on the chunk (its priority is raised): its requests go out marked urgent. */
  isUrgent (index: number): boolean { return this.#picker.priorityOf(index) > 0 }

  /** A neighbour's full bitfield (on joining, or again after reconnecting). */
  peerJoined (peer: string, bits: Bitfield, seeder: boolean): void {
    if (seeder) this.#seeders.add(peer)
    else this.#seeders.delete(peer)
    this.#picker.addPeer(peer, bits, { seeder })
  }

  peerHas (peer: string, index: number): void { this.#picker.peerHas(peer, index) }

  /**
   * A neighbour left (its session ended, or the driver paused it as a staller). Returns the chunks it had
   * in flight: the driver aborts them, then calls `released`. A holder a seeder's refusal named is
   * unreachable from now on (holderUnreachable): without that the refusal's block held the seeder back for
   * its full retryAfterMs — on loopback (4 hosts, 1 MiB) a host whose named holder had exited waited 3.7 s
   * for its last chunk, until a re-dial of that holder failed.
   */
  peerLeft (peer: string): number[] {
    this.#busyUntil.delete(peer)
    this.#window.delete(peer)
    const inflight = this.#picker.removePeer(peer)
    this.holderUnreachable(peer)
    return inflight
  }

  /**
   * A holder a seeder pointed us to cannot be dialed, stalls (the driver paused it, slow-peer.ts) or left. It
   * counts as failed for those chunks, so the next request tells the seeder, which then serves them itself
   * (its policy's first rule), and the seeder may be asked again at once rather than after the refusal's
   * back-off.
   */
  holderUnreachable (peer: string): void {
    for (const { index, seeder } of this.#hinted.get(peer) ?? []) {
      this.#holderFailed(peer, index)
      this.#picker.unblock(seeder, index)
    }
    this.#hinted.delete(peer)
  }

  /**
   * Requests to start now over `peers` (keys of the connected neighbours), visited from a random one so
   * no peer always gets first pick, each within its room. They count against the budgets from now on.
   */
  fill (peers: readonly string[], now: number): PeerRequest[] {
    const out: PeerRequest[] = []
    const n = peers.length
    const start = n > 0 ? Math.floor(this.#init.rng() * n) : 0
    let othersLeft = this.#picker.readerWaiting ? Math.max(0, OTHERS_WHILE_READING - this.#picker.inflightUnprioritized) : Infinity
    for (let k = 0; k < n && this.hasRoom; k++) {
      const peer = peers[(start + k) % n]!
      if ((this.#busyUntil.get(peer) ?? -Infinity) > now) continue
      const free = this.#room(this.#peerBytes.get(peer) ?? 0, this.#picker.inflightOf(peer), this.#window.get(peer))
      if (free <= 0) continue
      for (const index of this.#picker.pick(peer, free, now, { maxUnprioritized: othersLeft })) {
        if (!this.isUrgent(index)) othersLeft--
        this.#requests++
        this.#account(peer, index, 1)
        out.push({ peer, index })
      }
    }
    return out
  }

  /** Peers to name when asking a seeder for `index`: those that failed us for it (the driver adds banned ones). */
  failedHoldersFor (index: number): string[] {
    return [...this.#failedHolders.get(index) ?? []]
  }

  /** The request ended in an error (connection reset, timeout): it counts against the peer. */
  failed (peer: string, index: number, now: number): void {
    this.#ended(peer, index)
    this.#holderFailed(peer, index)
    this.#picker.requestFailed(peer, index, now)
  }

  /**
   * The neighbour answered without the chunk. Returns the holders a refusal named, for the driver to dial
   * while it wants more neighbours.
   */
  answered (peer: string, index: number, answer: PlannerAnswer, now: number): readonly string[] {
    this.#ended(peer, index)
    if (answer.status === 'missing') this.#holderFailed(peer, index)
    // Busy with our other requests still in flight: it serves us, at its own pace. Ask it for no more than
    // those and give this chunk to another peer; a time-out here would idle our link to it once they end.
    const others = this.#picker.inflightOf(peer) - 1
    const pacing = answer.status === 'busy' && others > 0
    if (pacing) this.#window.set(peer, others)
    const peerBusy = answer.status === 'busy' && !pacing && this.#init.busyBackoff !== 'chunk'
    if (peerBusy) this.#busyUntil.set(peer, now + this.#busyRetryMs)
    // Blocked until `now`, a chunk is blocked for no time: it may go to the next peer at once.
    const retryAfterMs = answer.status !== 'busy' ? undefined : peerBusy || pacing ? 0 : this.#busyRetryMs
    this.#picker.requestFailed(peer, index, now, { refused: answer.status !== 'missing', retryAfterMs })
    if (answer.status !== 'refused') return []
    for (const h of answer.holders) this.#hinted.set(h, [...this.#hinted.get(h) ?? [], { index, seeder: peer }])
    return answer.holders
  }

  /** The chunk's data arrived (`bytes` long); the request slot is free while it is verified and written. */
  received (peer: string, index: number, bytes: number, now: number): void {
    this.#requests--
    this.#writing++
    const w = this.#window.get(peer)
    if (w !== undefined) {
      if (w + 1 >= this.#init.options.maxRequestsPerPeer) this.#window.delete(peer)
      else this.#window.set(peer, w + 1)
    }
    this.#picker.requestDone(peer, index, bytes, now)
  }

  /** The received chunk is verified and written. Returns the duplicate requests (endgame) to abort. */
  written (peer: string, index: number): PeerRequest[] {
    this.#writing--
    this.#account(peer, index, -1)
    this.#failedHolders.delete(index)
    return this.#picker.markHave(index)
  }

  /**
   * The store got the chunk another way (an HA seeder's origin pull, a file copied from a twin): it is not
   * asked for. Returns the requests in flight for it, to abort.
   */
  gained (index: number): PeerRequest[] {
    this.#failedHolders.delete(index)
    return this.#picker.markHave(index)
  }

  /** The chunk is no longer held (see PiecePicker.lost): it is asked for again. */
  lost (index: number): void { this.#picker.lost(index) }

  /** The received chunk failed verification: the peer is not asked for it again soon. */
  rejected (peer: string, index: number, now: number): void {
    this.#writing--
    this.#account(peer, index, -1)
    this.#picker.requestFailed(peer, index, now)
  }

  /**
   * The driver aborted a request (a duplicate no longer needed, a peer gone, a timeout), or a received
   * chunk could not be written (`received` true): its bytes no longer count.
   */
  released (peer: string, index: number, received = false): void {
    if (received) {
      this.#writing--
      this.#account(peer, index, -1)
    } else this.#ended(peer, index)
  }

  /**
   * Requests without progress for 2 × requestIdleMs (an idle timeout: a busy peer's queued requests are
   * not stuck), recorded as failed. The driver aborts each and calls `released`.
   */
  timedOut (now: number): PeerRequest[] {
    const out = this.#picker.timedOut(now, () => this.#init.options.requestIdleMs * 2)
    for (const r of out) this.#picker.requestFailed(r.peer, r.index, now)
    return out
  }

  /**
   * Room for more requests to a peer that has `peerBytes` (in `peerCount` requests) in flight. Budgets are
   * in bytes of a chunk's real length, a new request counted as a full chunk since what the picker will
   * choose is unknown: a version of 5,000 files of 1–4 KiB kept only 4 tiny requests in flight at a time
   * and took 45 × as long as the same bytes in one file.
   */
  #room (peerBytes: number, peerCount: number, window = this.#init.options.maxRequestsPerPeer): number {
    const size = this.#init.chunkSize
    const total = receiveBudgetBytes(this.#init.options.maxBufferedBytes, size)
    return Math.max(0, Math.min(
      Math.floor((window * size - peerBytes) / size),
      Math.floor((total - this.#bytesInFlight) / size),
      MAX_REQUESTS_PER_PEER - peerCount,
      MAX_REQUESTS - this.#requests - this.#writing
    ))
  }

  /** The request phase ended without data to write. */
  #ended (peer: string, index: number): void {
    this.#requests--
    this.#account(peer, index, -1)
  }

  /** Counts a chunk's bytes against the budgets (+1) or releases them (−1). */
  #account (peer: string, index: number, sign: 1 | -1): void {
    const n = sign * this.#init.lengths[index]!
    this.#bytesInFlight += n
    const left = (this.#peerBytes.get(peer) ?? 0) + n
    if (left === 0) this.#peerBytes.delete(peer)
    else this.#peerBytes.set(peer, left)
  }

  #holderFailed (peer: string, index: number): void {
    if (this.#seeders.has(peer)) return
    const set = this.#failedHolders.get(index) ?? new Set()
    set.add(peer)
    this.#failedHolders.set(index, set)
  }
}
