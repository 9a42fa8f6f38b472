/**
 * The simulator's clock and agenda: a binary min-heap of callbacks keyed by (time, insertion order), so
 * events at the same instant run in the order they were scheduled and a run replays exactly from its seed.
 * O(log n) per schedule and per event. Cancelled entries stay in the heap and are skipped when popped
 * (cheaper than a decrease-key heap, and rescheduled flows cancel often).
 */

export interface Scheduled {
  readonly at: number
  /** Set by cancel(); the callback will not run. */
  cancelled: boolean
}

interface Entry extends Scheduled {
  seq: number
  run: () => void
}

export class EventQueue {
  #heap: Entry[] = []
  #deferred: Array<() => void> = []
  #seq = 0
  #now = 0
  #processed = 0

  /** Simulated time in milliseconds. */
  get now (): number { return this.#now }
  /** Events run so far. */
  get processed (): number { return this.#processed }
  /** Entries in the heap, cancelled ones included. */
  get size (): number { return this.#heap.length }

  /** Runs `run` at time `at` (ms; clamped to now, the clock never goes back). */
  at (at: number, run: () => void): Scheduled {
    const e: Entry = { at: at < this.#now ? this.#now : at, seq: this.#seq++, run, cancelled: false }
    const h = this.#heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(e, h[parent]!)) break
      h[i] = h[parent]!
      i = parent
    }
    h[i] = e
    return e
  }

  /** Runs `run` after `delay` ms. */
  after (delay: number, run: () => void): Scheduled {
    return this.at(this.#now + delay, run)
  }

  /**
   * Runs `fn` after the current event, at the same instant, before any other event (setImmediate's place
   * in Node's loop); far cheaper than a zero-delay event when thousands of hosts react to one broadcast.
   */
  defer (fn: () => void): void {
    this.#deferred.push(fn)
  }

  cancel (e: Scheduled | undefined): void {
    if (e !== undefined) e.cancelled = true
  }

  /** Runs events in order until none is left, `until` (ms) is passed, or `stop()` returns true. */
  run (until = Infinity, stop: () => boolean = () => false): void {
    while (this.#heap.length > 0 && !stop()) {
      const e = this.#heap[0]!
      if (e.at > until) break
      this.#pop()
      if (e.cancelled) continue
      this.#now = e.at
      this.#processed++
      e.run()
      // Deferred work may defer more; it all runs before the clock moves.
      for (let k = 0; k < this.#deferred.length; k++) this.#deferred[k]!()
      this.#deferred.length = 0
    }
  }

  #pop (): void {
    const h = this.#heap
    const last = h.pop()!
    if (h.length === 0) return
    let i = 0
    const n = h.length
    while (true) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const c = r < n && before(h[r]!, h[l]!) ? r : l
      if (!before(h[c]!, last)) break
      h[i] = h[c]!
      i = c
    }
    h[i] = last
  }
}

function before (a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}
