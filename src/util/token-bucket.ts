/**
 * Bandwidth limiter for the dedicated line and for peer upload caps, after golang.org/x/time/rate: the
 * bucket holds up to `burst` bytes of credit, refills at `rate` bytes per second, and every method takes
 * `now` so tests run on a fake clock.
 *
 * A reservation always succeeds and says how long to wait: the balance may go negative, and the debt is
 * what later callers queue behind. That makes reservations first-come first-served, and one bucket shared
 * by many transfers admits at most `burst + rate·t` bytes in any window of t seconds.
 *
 * A single reservation larger than `burst` is rejected with InvalidInputError rather than silently
 * allowed to overdraw (Kraken's limiter does the same); `take` splits large transfers into burst-sized
 * pieces so callers streaming bytes need not care.
 */
import { performance } from 'node:perf_hooks'
import { InvalidInputError } from '../errors.ts'
import { sleep } from './sleep.ts'

export interface TokenBucketInit {
  /** Refill rate in bytes per second. */
  rate: number
  /** Largest credit the bucket holds, in bytes; also the largest single reservation. */
  burst: number
  /** Credit at the start, in bytes (0 … burst). @default burst */
  initial?: number
  /** Clock in milliseconds, used by `take`. @default performance.now */
  now?: () => number
}

export class TokenBucket {
  readonly rate: number
  readonly burst: number
  readonly now: () => number
  #tokens: number
  /** When #tokens was last brought up to date; undefined until the first reservation, so the initial credit waits for it. */
  #last: number | undefined

  constructor (init: TokenBucketInit) {
    if (!(init.rate > 0) || !Number.isFinite(init.rate)) throw new InvalidInputError(`token bucket rate must be a positive number of bytes per second, got ${init.rate}`)
    if (!(init.burst > 0) || !Number.isFinite(init.burst)) throw new InvalidInputError(`token bucket burst must be a positive number of bytes, got ${init.burst}`)
    this.rate = init.rate
    this.burst = init.burst
    this.now = init.now ?? (() => performance.now())
    const initial = init.initial ?? init.burst
    if (!(initial >= 0 && initial <= init.burst)) throw new InvalidInputError(`token bucket initial credit must be between 0 and the burst ${init.burst}, got ${initial}`)
    this.#tokens = initial
  }

  /**
   * Reserves `bytes` at time `now` (ms) and returns how many milliseconds to wait before sending them.
   * A clock that steps backwards is treated as standing still.
   */
  reserve (bytes: number, now: number): number {
    if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new InvalidInputError(`cannot reserve ${bytes} bytes`)
    if (bytes > this.burst) throw new InvalidInputError(`cannot reserve ${bytes} bytes at once from a bucket with burst ${this.burst}; split the transfer`)
    const last = this.#last === undefined || now > this.#last ? now : this.#last
    if (this.#last !== undefined) this.#tokens = Math.min(this.burst, this.#tokens + (last - this.#last) * this.rate / 1000)
    this.#last = last
    this.#tokens -= bytes
    const readyAt = this.#tokens < 0 ? last - this.#tokens * 1000 / this.rate : last
    return Math.max(0, readyAt - now)
  }
}

/**
 * Waits until `bytes` may be sent through `bucket`, in burst-sized pieces so a large transfer neither
 * fails nor jumps the queue ahead of smaller ones. On abort it rejects with the signal's reason; the piece
 * being waited for is not refunded, so an abort wastes at most `burst` bytes of budget — erring towards
 * under-using the line, never over.
 */
export async function take (bucket: TokenBucket, bytes: number, signal?: AbortSignal): Promise<void> {
  if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new InvalidInputError(`cannot take ${bytes} bytes`)
  for (let left = bytes; left > 0; left -= bucket.burst) {
    signal?.throwIfAborted()
    await sleep(bucket.reserve(Math.min(left, bucket.burst), bucket.now()), signal)
  }
}
