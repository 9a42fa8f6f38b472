/**
 * When a downloading node next asks for more neighbours (the seeders it bootstrapped from and the DHT's
 * providers of the version). Pure: the clock and the Rng are arguments.
 *
 * One round runs at a time. A round that gained no neighbour doubles the wait before the next, from
 * `baseMs` up to `maxMs`, with jitter (util/backoff.ts); one that gained a neighbour makes the next due at
 * once, as does a neighbour leaving. Before, a node under its neighbour limit asked on every 2 s tick, and
 * rounds overlapped (a DHT query may take its 5 s timeout): in an 8-host swarm, where a host can never
 * reach the limit of 12, each host ran DHT queries all through its download for peers it already had.
 * Paced, hosts spent ~10 % less CPU (lab, N = 8, quarter rates, 2026-12-02: 7.29 → 6.52 CPU-s warm, 7.01 →
 * 6.24 cold, means of 8 hosts). BitTorrent clients likewise re-announce to trackers and the DHT at
 * intervals of minutes, not per tick.
 */
import { backoffDelay } from '../util/backoff.ts'
import type { Rng } from '../util/random.ts'

/**
 * Longest wait between rounds that gain nothing, before jitter, for the node and the simulator: a host still
 * finds a newcomer within ~45 s, and at once after losing a neighbour; a newcomer dials the hosts it finds
 * itself, and the seeders hint their hosts to every newcomer.
 */
export const DISCOVERY_MAX_WAIT_MS = 30_000

/**
 * Whether a discovery round asks the DHT beside the bootstrap seeders: once a round found no one new
 * (`fruitless` > 0), or while no seeder is a neighbour (its session dropped: no hints come). The DHT's
 * servers are the seeders, whose hints arrive with each newcomer's session; asked by every host at its start
 * as well, the DHT doubled the CPU a seeder spends on each joining host (README, "The seeder at the start").
 */
export function asksDht (round: { fruitless: number, seederNeighbours: number }): boolean {
  return round.fruitless > 0 || round.seederNeighbours === 0
}

export interface DiscoveryPacerInit {
  /** Wait after the first round that gained nothing, in ms (before jitter). */
  baseMs: number
  /** Longest wait, in ms (before jitter). */
  maxMs: number
  rng: Rng
}

export class DiscoveryPacer {
  readonly #init: DiscoveryPacerInit
  #running = false
  /** Neighbours when the running round began: it gained one if there are more when it ends. */
  #before = 0
  /** A neighbour left while a round ran: that round's outcome does not delay the next. */
  #lostMeanwhile = false
  #fruitless = 0
  #nextAt = -Infinity

  constructor (init: DiscoveryPacerInit) {
    this.#init = init
  }

  /** Rounds in a row, up to the last that ended, that gained no neighbour. */
  get fruitless (): number {
    return this.#fruitless
  }

  /** Whether a round may start at `now` (ms): none is running and the wait after the last has passed. */
  due (now: number): boolean {
    return !this.#running && now >= this.#nextAt
  }

  /** A round started, with `neighbours` neighbours. */
  begin (neighbours: number): void {
    this.#running = true
    this.#before = neighbours
  }

  /** A neighbour left: the next round is due at once, with the wait back at its start. */
  neighbourLost (): void {
    this.#fruitless = 0
    this.#nextAt = -Infinity
    if (this.#running) this.#lostMeanwhile = true
  }

  /** The round ended (done or failed) at `now` (ms), with `neighbours` neighbours. */
  end (neighbours: number, now: number): void {
    const again = neighbours > this.#before || this.#lostMeanwhile
    this.#running = false
    this.#lostMeanwhile = false
    this.#fruitless = again ? 0 : this.#fruitless + 1
    this.#nextAt = again ? now : now + backoffDelay(this.#fruitless, { baseMs: this.#init.baseMs, maxMs: this.#init.maxMs }, this.#init.rng)
  }
}
