/**
 * What a version's swarm says in its logs, one function per state change (after Kraken's torrentlog):
 * the message texts live here only, so the operators' dashboards, tests and the demo that match on them
 * have one place to look. Never one line per chunk at info level.
 */
import type { Logger } from '../log.ts'
import type { SlowPeerVerdict } from './slow-peer.ts'

export const SWARM_MSG = {
  neighbourJoined: 'neighbour joined',
  peerBanned: 'peer banned for this session',
  bulkUnreachable: 'bulk endpoint unreachable; using libp2p streams',
  downloadStalled: 'download stalled',
  /** A neighbour that stalls or trickles while others deliver is paused; its requests go elsewhere. */
  peerRoutedAround: 'slow peer routed around',
  downloadProgressing: 'download progressing again',
  downloadComplete: 'download complete',
  /** A fetch resolved its version and opened its store: the transfer starts. */
  fetching: 'fetching',
  /** A fetch ended its seeding (after --linger, or on a stop signal): its upload totals. */
  stoppedSeeding: 'stopped seeding',
  /** At debug, one per chunk request: its outcome and where its time went (the lab's shard report sums them). */
  chunkRequestEnded: 'chunk request ended'
} as const

/** How a chunk request ended: the chunk arrived, the neighbour answered without it, the driver aborted it, or it failed. */
export type ChunkRequestOutcome = 'ok' | 'busy' | 'refused' | 'missing' | 'aborted' | 'failed'

/**
 * A chunk request's life, times in ms of the swarm's clock (`firstByteAt` undefined if no byte came). Logged
 * as `waitMs` (to the first byte, or to the end if none came: the uploader's queue and the round trip) and
 * `transferMs` (first byte to end), with `urgent` (a reader waits on the chunk) and the `bytes` received.
 */
export interface ChunkRequestTiming {
  peer: string
  index: number
  urgent: boolean
  outcome: ChunkRequestOutcome
  startedAt: number
  firstByteAt: number | undefined
  endedAt: number
  bytes: number
}

export class SwarmLog {
  readonly log: Logger
  #bulkFallbackSaid = false

  constructor (log: Logger) { this.log = log }

  neighbourJoined (peer: string, role: string): void { this.log.debug({ peer, role }, SWARM_MSG.neighbourJoined) }
  sessionDialFailed (peer: string, err: Error): void { this.log.debug({ peer, err: err.message }, 'session dial failed') }
  sessionEnded (peer: string, err: Error): void { this.log.debug({ peer, err: err.message }, 'session ended with error') }
  peerBanned (peer: string, why: string): void { this.log.warn({ peer, why }, SWARM_MSG.peerBanned) }
  /** At warn once per swarm (the operator learns the bulk port is closed somewhere), at debug after. */
  bulkUnreachable (peer: string, err: Error): void {
    const level = this.#bulkFallbackSaid ? 'debug' : 'warn'
    this.#bulkFallbackSaid = true
    this.log[level]({ peer, err: err.message, hint: 'open the bulk port (--bulk-port) where --listen is reachable; libp2p streams cost more CPU per byte' }, SWARM_MSG.bulkUnreachable)
  }
  peerRoutedAround (v: SlowPeerVerdict): void {
    const { peer, reason, heldMs, limitMs, pauseMs } = v
    this.log.info({ peer, reason, heldMs, limitMs, rate: Math.round(v.rate), typicalOther: Math.round(v.typicalOther), pauseMs }, SWARM_MSG.peerRoutedAround)
  }
  chunkRequestFailed (peer: string, index: number, err: Error): void { this.log.debug({ peer, index, err: err.message }, 'chunk request failed') }
  /** At debug: a chunk request's outcome and timing (ChunkRequestTiming). */
  chunkRequestEnded (r: ChunkRequestTiming): void {
    if (!this.log.isLevelEnabled('debug')) return
    const { peer, index, urgent, outcome, startedAt, firstByteAt, endedAt, bytes } = r
    const timing = firstByteAt === undefined ? { waitMs: endedAt - startedAt } : { waitMs: firstByteAt - startedAt, transferMs: endedAt - firstByteAt }
    this.log.debug({ peer, index, urgent, outcome, ...timing, bytes }, SWARM_MSG.chunkRequestEnded)
  }
  downloadStalled (reason: string, have: number, total: number): void { this.log.warn({ reason, have, total }, SWARM_MSG.downloadStalled) }
  downloadProgressing (): void { this.log.info(SWARM_MSG.downloadProgressing) }
  downloadComplete (chunks: number, bytes: number): void { this.log.info({ chunks, bytes }, SWARM_MSG.downloadComplete) }
}
