/**
 * What a host is doing, as the seeder sees it: from its last progress report while reports keep coming,
 * and from its connection once they stop. A host whose reports stopped and whose connection closed
 * (the kernel of an exited or killed process closes its sockets) is gone; one whose reports stopped while
 * its connection stays open, or was cut because it stopped answering pings (a frozen process, or a host
 * the network lost: from here the two look alike), is stalled, with that as its reason, until that has
 * lasted UNRESPONSIVE_GONE_MS.
 */
import type { HostSnapshot } from './snapshot.ts'

/** A host that has not reported for this long has stopped reporting, in ms (reports come every 2 s). */
export const HOST_GONE_MS = 30_000
/** A host that stopped answering counts as stalled for this long after its last report, then as gone, in ms. */
export const UNRESPONSIVE_GONE_MS = 10 * 60_000

export type HostState = 'complete' | 'fetching' | 'stalled' | 'gone'

export function hostState (h: HostSnapshot): { state: HostState, reason?: string } {
  if (h.ageMs <= HOST_GONE_MS) {
    if (h.state === 'stalled') return h.reason === undefined ? { state: 'stalled' } : { state: 'stalled', reason: h.reason }
    return { state: h.state === 'seeding' ? 'complete' : 'fetching' }
  }
  const silent = `no report for ${Math.round(h.ageMs / 1000)} s`
  if (h.connection === 'open') return { state: 'stalled', reason: `${silent}; its connection is still open` }
  if (h.connection === 'unresponsive' && h.ageMs <= UNRESPONSIVE_GONE_MS) return { state: 'stalled', reason: `${silent}; it stopped answering pings (process frozen or host unreachable)` }
  return { state: 'gone' }
}
