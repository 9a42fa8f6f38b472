/**
 * A seeder's part in an HA group (`--seeder-peer`): several seeders serve the same versions while each
 * version still crosses the line once. For every version, the seeders are ranked by rendezvous hashing
 * (ownership.ts); the owner pulls from the origin, the others join its swarm like hosts — trusting the
 * group's keys, fetching verified chunks from the owner and the hosts — and serve what they hold. When
 * the seeders above one stop making progress for the grace period (takeover.ts), it pulls from the origin
 * what no neighbour holds, resuming from its own verified chunks, and keeps fetching the rest.
 *
 * Signing needs no hand-over: a version's header is a pure function of the origin's listing (files,
 * sizes, revision, chunk size) and chunk hashes of the bytes, so every seeder of the group publishes the
 * same header id and manifest id, each signing with its own key what it publishes; hosts trust every
 * key of the group and accept any mix (see "Rolling keys" in the README).
 */
import type { Logger } from '../log.ts'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import { InvalidInputError } from '../errors.ts'
import { formatModelVersion, type ModelVersion } from '../model-version.ts'
import type { PeerHint } from '../peer/protocols/session/codec.ts'
import { TrustList } from '../peer/signed.ts'
import type { VersionSwarm } from '../peer/version-swarm.ts'
import { sleep } from '../util/sleep.ts'
import { rankSeeders } from './ownership.ts'
import { chunksNobodyHolds, observeSeeder, shouldPull, type PeerSeederState } from './takeover.ts'

export const HA_DEFAULTS = {
  /**
   * How long the seeders ranked above may go without a new chunk before the next one pulls, ms. Well
   * above a chunk's pull time at usual line rates (64 MiB at 400 MiB/s over 4 readers: 0.6 s) and the
   * origin retries' backoff (≤ 8 s), and above --poll-interval (5 s), so an owner that lists a version a
   * poll later than the others is not taken over.
   */
  takeoverGraceMs: 30_000,
  /** How often a seeder looks at the others' progress, ms. */
  tickMs: 1000,
  /**
   * A seeder that took over pulls in rounds of this share of the version, from its end, and plans each
   * round anew: an owner that comes back pulls from the front (its reads skip what it came to hold), so
   * the two meet with at most a round between them pulled twice.
   */
  takeoverRoundShare: 1 / 16
} as const

/** Parses one `--seeder-peer` value: a multiaddr ending in /p2p/<peer id>. @throws InvalidInputError */
export function parseSeederPeer (addr: string): PeerHint {
  let id: string | undefined
  try {
    id = multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value
  } catch (err) {
    throw new InvalidInputError(`--seeder-peer ${JSON.stringify(addr)} is not a multiaddr (e.g. /dns4/seeder-1/tcp/4001/p2p/12D3KooW…)`, { cause: err })
  }
  if (id === undefined) throw new InvalidInputError(`--seeder-peer ${addr} lacks /p2p/<peer id>: each seeder prints its own at start`)
  try {
    peerIdFromString(id)
  } catch (err) {
    throw new InvalidInputError(`--seeder-peer ${addr}: invalid peer id`, { cause: err })
  }
  return { id, addrs: [addr] }
}

export interface HaGroupInit {
  /** This seeder's peer id. */
  self: string
  /** Every seeder of the group, each a multiaddr ending in /p2p/<peer id>; this seeder's own entry is skipped, so all may share one list. */
  peers: readonly string[]
  /** @default HA_DEFAULTS.takeoverGraceMs */
  graceMs?: number
  /** @default HA_DEFAULTS.tickMs */
  tickMs?: number
  now: () => number
  log: Logger
}

/** What the group needs of a held version: what it holds, and its swarm's sessions. */
export interface HaVersion {
  readonly ref: ModelVersion
  readonly store: Pick<ChunkStore, 'have' | 'layout'>
  readonly swarm: Pick<VersionSwarm, 'connect' | 'neighbourBits'>
}

export class HaGroup {
  readonly self: string
  /**
   * The group's keys, this seeder's own among them (hosts relay back what it signed): signed hashes and
   * completions under them are accepted and relayed.
   */
  readonly trust: TrustList
  /** How many other seeders the group has. */
  readonly size: number
  readonly #peers: PeerHint[]
  readonly #graceMs: number
  readonly #tickMs: number
  readonly #now: () => number
  readonly #log: Logger

  constructor (init: HaGroupInit) {
    this.self = init.self
    this.#peers = init.peers.map(parseSeederPeer).filter(p => p.id !== init.self)
    this.trust = new TrustList([init.self, ...this.#peers.map(p => p.id)])
    this.size = this.#peers.length
    this.#graceMs = init.graceMs ?? HA_DEFAULTS.takeoverGraceMs
    this.#tickMs = init.tickMs ?? HA_DEFAULTS.tickMs
    this.#now = init.now
    this.#log = init.log
  }

  /** The group's seeder ids in rendezvous order for `ref`: owner first. */
  ranking (ref: ModelVersion): string[] {
    return rankSeeders([this.self, ...this.#peers.map(p => p.id)], ref)
  }

  /**
   * Brings `v` to every chunk held: keeps sessions with the other seeders in the version's swarm (whose
   * download fetches what they and the hosts hold), and whenever this seeder should pull (shouldPull)
   * calls `pull` with the chunks no neighbour holds. Resolves once the store holds every chunk, when
   * `pull` returns false (the pull failed; the caller recorded why) or once `held()` is false (the version
   * left the cache). Rejects only when `signal` aborts.
   */
  async complete (v: HaVersion, io: { pull: (chunks: number[]) => Promise<boolean>, held: () => boolean }, signal: AbortSignal): Promise<void> {
    const version = formatModelVersion(v.ref)
    const ranking = this.ranking(v.ref)
    const owner = ranking[0]!
    const since = this.#now()
    const peers = new Map<string, PeerSeederState>()
    let pulling = ranking[0] === this.self
    this.#log.info({ version, owner, ranking, self: this.self }, pulling ? 'owning the pull of this version' : 'fetching this version from the swarm; its owner pulls it')
    let first = true
    while (!v.store.have.complete && io.held()) {
      const dials = this.#peers.map(p => v.swarm.connect(p))
      // Before a first pull, a tick for the other seeders' sessions and bitfields: chunks one already holds
      // (a restarted owner, a taken-over pull) must not cross the line again.
      if (first) await Promise.race([Promise.allSettled(dials).then(() => sleep(100, signal)), sleep(this.#tickMs, signal)])
      first = false
      const now = this.#now()
      const bits = v.swarm.neighbourBits()
      for (const p of this.#peers) peers.set(p.id, observeSeeder(peers.get(p.id), { have: bits.get(p.id)?.count, connected: bits.has(p.id) }, now))
      const mine = shouldPull({ self: this.self, ranking, peers, total: v.store.layout.count, since, now, graceMs: this.#graceMs })
      if (mine && !pulling) {
        this.#log.warn({ version, owner, ownerHave: peers.get(owner)?.have, ownerConnected: peers.get(owner)?.connected, graceMs: this.#graceMs }, 'taking over the pull: the seeders ranked above made no progress for the grace period')
      }
      pulling = mine
      const lacking = pulling ? chunksNobodyHolds(v.store.have, bits.values()) : []
      const chunks = owner === this.self ? lacking : lacking.slice(-Math.ceil(v.store.layout.count * HA_DEFAULTS.takeoverRoundShare))
      if (chunks.length > 0) {
        let bytes = 0
        for (const i of chunks) bytes += v.store.layout.length[i]!
        this.#log.info({ version, chunks: chunks.length, bytes, ranges: ranges(chunks) }, 'pulling what no neighbour holds')
        if (!await io.pull(chunks)) return
        continue
      }
      await sleep(this.#tickMs, signal)
    }
  }
}

/** Ascending indexes as runs, e.g. [0,1,2,5] → '0-2,5': one short log field for thousands of chunks. */
function ranges (indexes: readonly number[]): string {
  const out: string[] = []
  for (let k = 0; k < indexes.length;) {
    let j = k
    while (j + 1 < indexes.length && indexes[j + 1] === indexes[j]! + 1) j++
    out.push(j === k ? `${indexes[k]}` : `${indexes[k]}-${indexes[j]}`)
    k = j + 1
  }
  return out.join(',')
}
