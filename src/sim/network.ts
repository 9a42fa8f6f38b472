/**
 * Flow-level network: a transfer is a flow through one or two links (the sender's upload, the receiver's
 * download), and each flow runs at min over its links of capacity ÷ flows on that link. Rates change only
 * when a flow starts or ends, and then only for flows sharing a link with it, so a change costs
 * O(flows on two links · log events) — what lets 10,000 hosts × 1,600 chunks run in minutes.
 *
 * Fidelity traded: this is each link's equal share, not max-min fairness. A flow held back elsewhere does
 * not hand its unused share to the others on a link, so throughput is underestimated when both ends of a
 * path are busy with unequal counts (exact when every receiver's share d ÷ flows is at least its senders'
 * u ÷ flows, as with u = 25 and d = 100 Mbit/s and up to 4 downloads at a time). No TCP slow start, no
 * packet loss, no per-flow window limit: a flow is at its share from its first byte.
 */
import type { EventQueue, Scheduled } from './event-queue.ts'

export class Link {
  /** Bytes per second; Infinity for a link that never limits. */
  readonly capacity: number
  readonly flows = new Set<Flow>()
  /** Bytes that crossed this link, counted as flows settle. */
  carried = 0

  constructor (capacity: number) {
    if (!(capacity > 0)) throw new RangeError(`link capacity must be positive, got ${capacity}`)
    this.capacity = capacity
  }

  /** Bytes per millisecond each flow gets here. */
  get share (): number { return this.capacity / 1000 / Math.max(1, this.flows.size) }
}

export interface Flow {
  readonly links: readonly Link[]
  readonly bytes: number
  /** Bytes still to send. */
  left: number
  /** Bytes per millisecond. */
  rate: number
  settledAt: number
  done: Scheduled | undefined
  readonly onDone: () => void
  /** The completion event's callback, made once: a flow's completion moves whenever its rate changes. */
  readonly finish: () => void
}

export class Network {
  readonly #queue: EventQueue

  constructor (queue: EventQueue) {
    this.#queue = queue
  }

  /** Starts sending `bytes` through `links`; `onDone` runs when the last byte has left. */
  start (links: readonly Link[], bytes: number, onDone: () => void): Flow {
    const flow: Flow = { links, bytes, left: bytes, rate: 0, settledAt: this.#queue.now, done: undefined, onDone, finish: () => this.#finish(flow) }
    for (const l of links) this.#settleLink(l)
    for (const l of links) l.flows.add(flow)
    this.#rerate(links)
    return flow
  }

  /** Stops a flow early; returns the bytes it had sent. */
  abort (flow: Flow): number {
    if (flow.left === 0 && flow.done === undefined) return flow.bytes
    this.#queue.cancel(flow.done)
    for (const l of flow.links) this.#settleLink(l)
    this.#remove(flow)
    return flow.bytes - flow.left
  }

  #finish (flow: Flow): void {
    for (const l of flow.links) this.#settleLink(l)
    // Whatever rounding left is sent now, so a link carries exactly the flows' sizes.
    for (const l of flow.links) l.carried += flow.left
    flow.left = 0
    this.#remove(flow)
    flow.onDone()
  }

  #remove (flow: Flow): void {
    flow.done = undefined
    for (const l of flow.links) l.flows.delete(flow)
    this.#rerate(flow.links)
  }

  #settleLink (link: Link): void {
    const now = this.#queue.now
    for (const f of link.flows) {
      if (f.settledAt === now) continue
      const sent = Math.min(f.left, f.rate * (now - f.settledAt))
      f.left -= sent
      for (const l of f.links) l.carried += sent
      f.settledAt = now
    }
  }

  /** New rates for the flows on `links` (already settled), and new completion events where a rate changed. */
  #rerate (links: readonly Link[]): void {
    for (const link of links) {
      for (const f of link.flows) {
        let rate = Infinity
        for (const l of f.links) rate = Math.min(rate, l.share)
        if (rate === f.rate && f.done !== undefined) continue
        f.rate = rate
        const at = this.#queue.now + (rate === Infinity ? 0 : f.left / rate)
        f.done = f.done === undefined ? this.#queue.at(at, f.finish) : this.#queue.reschedule(f.done, at)
      }
    }
  }
}
