/**
 * Which neighbours a download should route around now: one that accepts chunk requests and then sends
 * nothing (a staller), or sends so slowly that its requests would hold chunks for minutes (a trickler),
 * while other neighbours do deliver. The request's own idle timeout (requestIdleMs, 20 s) only catches
 * the first, once per request; a trickler resets it with every few bytes.
 *
 * Pure: the driver (download-scheduler.ts) reports requests starting and ending and bytes arriving, and
 * calls `check` with the time; the verdicts say whom to pause and for how long. A paused peer's requests
 * are given up and asked elsewhere, and it is not asked again until its pause ends; each new verdict on the
 * same peer doubles its pause, up to `maxPauseMs`, so a peer that keeps misbehaving costs less each time.
 *
 * Two rules, once a peer has had requests out for `graceMs`:
 *  - quiet: no byte from it for `quietMs`, while the download has another neighbour to ask. Nothing
 *    received is lost by giving such requests up, and this is the case a host meets first: a staller that
 *    holds every chunk is asked for them all, and the seeder, a holder of last resort (piece-picker.ts),
 *    is asked only once the staller no longer counts as a holder.
 *  - slow: under `slowRatio` × a reference rate, or, while nobody else has delivered anything yet (the
 *    trickler is asked first, for the same reason), under `minRate` with another neighbour to ask. The
 *    reference is the typical rate of the other peers that delivered and are not paused (their upper
 *    median), but at least `slowRatio` × the best of them. The median, not the best: a seeder serving from a
 *    wider link sets the best, and against it honest hosts were judged slow (lab, N = 16 at 6.25 Mbit/s up,
 *    256 KiB chunks: hosts sharing their uplink among 8 uploads delivered 5–28 KB/s each against the
 *    seeder's 245–590 KB/s, and 71 verdicts in a warm and a cold run routed around them, sending their
 *    requests to the seeder). The floor under it: when half the others trickle, their median is a trickler's
 *    rate, and they would hide each other. With one or two others the upper median is the best of them.
 * Rates are per peer (all its requests together), measured from its first byte after it last went from
 * idle to busy (a request may first wait in the peer's upload queue: that is the quiet rule's to judge),
 * over a window that slides once it is older than `windowMs`.
 *
 * Both limits stretch with how sluggish honest peers are now: a silence that ended (bytes came after all)
 * is an honest peer's, and grace and quiet are at least SILENCE_FACTOR × the longest such silence of the
 * last minute. On this 2-core box, sixteen hosts and a seeder under a load average of 24–31 left honest
 * peers 8–10 s without a byte (CPU, not the network), and fixed 8 s limits paused them 30–45 times in a
 * run; a staller's silence never ends, and a trickler's are short, so neither stretches the limits.
 */

export interface SlowPeerOptions {
  /**
   * A peer is judged only once it has had requests out this long, in ms (or longer: see SILENCE_FACTOR).
   * 8 s: on this 2-core box, eight hosts and a seeder starting at once left honest peers 4.5–6.3 s without
   * sending a byte, and a 4 s limit paused them. @default 8000
   */
  graceMs?: number
  /** A peer with requests out that sent no byte for this long stalls, in ms (or longer: see SILENCE_FACTOR). @default 8000 */
  quietMs?: number
  /**
   * A peer delivering under this fraction of the other peers' typical rate is slow. 1/20: peers behind links
   * shaped alike differ by far less (a host's download is shared by its few sources), a trickler by far more.
   * @default 0.05
   */
  slowRatio?: number
  /**
   * A peer delivering under this many bytes per second is slow even with no other rate to compare, when the
   * download has another neighbour: far below any link a fleet runs on (256 kbit/s). @default 32 KiB/s
   */
  minRate?: number
  /** First pause of a peer routed around, in ms; doubled at each further verdict on it. @default 10_000 */
  pauseMs?: number
  /** Longest pause, in ms. @default 60_000 */
  maxPauseMs?: number
  /** Rates are measured over about this long at most, in ms. @default 20_000 */
  windowMs?: number
}

export interface SlowPeerVerdict {
  peer: string
  /** 'quiet': nothing for quietMs; 'slow': under slowRatio × the other peers' typical rate, or under minRate. */
  reason: 'quiet' | 'slow'
  /** How long it had had requests out (without a pause in between) when judged, in ms. */
  heldMs: number
  /** The grace and quiet limit it was judged by (stretched by honest peers' recent silences), in ms. */
  limitMs: number
  /** Its rate over its latest window, and the reference it was judged by (see the class comment; 0: none), in bytes per second. */
  rate: number
  typicalOther: number
  /** How long it is left alone, in ms. */
  pauseMs: number
}

interface PeerState {
  inflight: number
  /** When it last went from idle to busy. */
  busySince: number
  /**
   * Start of the rate window: the first byte after busySince (NaN before it), or later once the window slid.
   * Not busySince: a request may wait in the peer's upload queue first, and that wait is no measure of how
   * fast it sends. (It was not what routed honest hosts around at low rates, though: in the lab at 6.25
   * Mbit/s up ~150 verdicts a run remained after this, against the seeder's far higher rate; README.)
   */
  windowStart: number
  windowBytes: number
  lastByteAt: number
  /** Bytes per ms over its latest window, undefined before its first byte. */
  rate: number | undefined
  verdicts: number
  pausedUntil: number
  /** A pause not yet reported as over by `check`. */
  pauseOpen: boolean
}

/** Shorter windows would turn one chunk delivered in a few ms into an inflated reference rate. */
const MIN_SPAN_MS = 1000
/** Silences that ended count towards the limits when at least this long, for a minute, times the factor. */
const MIN_SILENCE_MS = 1000
const SILENCE_MEMORY_MS = 60_000
const SILENCE_FACTOR = 2

export class SlowPeers {
  readonly #opts: Required<SlowPeerOptions>
  readonly #peers = new Map<string, PeerState>()
  /** Silences of peers with requests out that ended with bytes, oldest first: when, and how long. */
  readonly #silences: Array<{ at: number, ms: number }> = []

  constructor (options: SlowPeerOptions = {}) {
    this.#opts = { graceMs: 8000, quietMs: 8000, slowRatio: 0.05, minRate: 32 * 1024, pauseMs: 10_000, maxPauseMs: 60_000, windowMs: 20_000, ...options }
  }

  /** A request to `peer` starts at `now`. */
  started (peer: string, now: number): void {
    const p = this.#state(peer)
    if (p.inflight === 0) {
      p.busySince = now
      p.windowStart = NaN
      p.windowBytes = 0
    }
    p.inflight++
  }

  /** A request to `peer` ended, whatever the outcome. */
  ended (peer: string): void {
    const p = this.#peers.get(peer)
    if (p !== undefined && p.inflight > 0) p.inflight--
  }

  /** `n` bytes of a chunk arrived from `peer` at `now`. */
  bytes (peer: string, n: number, now: number): void {
    const p = this.#state(peer)
    const silence = now - Math.max(p.lastByteAt, p.busySince)
    if (p.inflight > 0 && silence >= MIN_SILENCE_MS) this.#silences.push({ at: now, ms: silence })
    p.lastByteAt = now
    // The first bytes only start the window: how long they took to come is unknown.
    if (Number.isNaN(p.windowStart)) {
      p.windowStart = now
      return
    }
    p.windowBytes += n
    p.rate = p.windowBytes / Math.max(MIN_SPAN_MS, now - p.windowStart)
  }

  /** The peer left: what was known of it goes. */
  forget (peer: string): void {
    this.#peers.delete(peer)
  }

  /** Whether `peer` is paused at `now`. */
  paused (peer: string, now: number): boolean {
    return (this.#peers.get(peer)?.pausedUntil ?? -Infinity) > now
  }

  /** Peers paused at `now` (seeders are told them as failed holders, so they stop naming them). */
  pausedPeers (now: number): string[] {
    return [...this.#peers].filter(([, p]) => p.pausedUntil > now).map(([peer]) => peer)
  }

  /**
   * At `now`, with `neighbours` the download's neighbours (the peers judged included): the peers to route
   * around (each is paused from now on, its open requests to be given up by the caller), and the peers
   * whose pause has ended since the last call (to be asked again).
   */
  check (now: number, neighbours: number): { routeAround: SlowPeerVerdict[], resume: string[] } {
    const { graceMs, quietMs, slowRatio, minRate, pauseMs, maxPauseMs, windowMs } = this.#opts
    const resume: string[] = []
    for (const [peer, p] of this.#peers) {
      if (p.pauseOpen && p.pausedUntil <= now) {
        p.pauseOpen = false
        resume.push(peer)
      }
      // Slide an old window to its recent half, keeping its rate, so a peer that slows down later shows it.
      if (p.inflight > 0 && now - p.windowStart > windowMs) {
        p.windowBytes *= (windowMs / 2) / (now - p.windowStart)
        p.windowStart = now - windowMs / 2
      }
    }
    while (this.#silences.length > 0 && this.#silences[0]!.at < now - SILENCE_MEMORY_MS) this.#silences.shift()
    const patience = SILENCE_FACTOR * this.#silences.reduce((m, x) => Math.max(m, x.ms), 0)
    const grace = Math.max(graceMs, patience)
    const quietLimit = Math.max(quietMs, patience)
    const routeAround: SlowPeerVerdict[] = []
    for (const [peer, p] of this.#peers) {
      const heldMs = now - p.busySince
      if (p.inflight === 0 || p.pausedUntil > now || heldMs < grace) continue
      const typicalOther = this.#typicalRateExcept(peer, now)
      // Before its first byte a peer can only be quiet; its rate counts from there.
      const sending = !Number.isNaN(p.windowStart)
      const rate = sending ? p.windowBytes / Math.max(MIN_SPAN_MS, now - p.windowStart) : 0
      const others = neighbours > 1
      const quiet = others && now - Math.max(p.lastByteAt, p.busySince) >= quietLimit
      const slow = sending && (typicalOther > 0 ? rate < slowRatio * typicalOther : others && rate * 1000 < minRate)
      if (!quiet && !slow) continue
      const pause = Math.min(maxPauseMs, pauseMs * 2 ** p.verdicts)
      p.verdicts++
      p.pausedUntil = now + pause
      p.pauseOpen = true
      routeAround.push({ peer, reason: quiet ? 'quiet' : 'slow', heldMs, limitMs: Math.max(grace, quietLimit), rate: rate * 1000, typicalOther: typicalOther * 1000, pauseMs: pause })
    }
    return { routeAround, resume }
  }

  /**
   * The reference rate for judging `peer` (bytes per ms): the upper median of the rates the other peers not
   * paused at `now` delivered, at least slowRatio × the best of them; 0 when none has.
   */
  #typicalRateExcept (peer: string, now: number): number {
    const rates: number[] = []
    for (const [q, s] of this.#peers) if (q !== peer && s.pausedUntil <= now && s.rate !== undefined && s.rate > 0) rates.push(s.rate)
    if (rates.length === 0) return 0
    rates.sort((a, b) => a - b)
    return Math.max(rates[Math.floor(rates.length / 2)]!, this.#opts.slowRatio * rates[rates.length - 1]!)
  }

  #state (peer: string): PeerState {
    let p = this.#peers.get(peer)
    if (p === undefined) {
      p = {
        inflight: 0, busySince: 0, windowStart: 0, windowBytes: 0, lastByteAt: -Infinity, rate: undefined, verdicts: 0, pausedUntil: -Infinity, pauseOpen: false
      }
      this.#peers.set(peer, p)
    }
    return p
  }
}
