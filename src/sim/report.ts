/**
 * Figures from a simulated run: completion times against the Kumar–Ross bound, seeder egress and line
 * bytes per model copy, and what the run cost the simulator itself.
 */
import { lowerBoundMs, type Scenario } from './scenario.ts'
import type { SeederAnswers, SimResult } from './swarm-sim.ts'

export interface SimSummary {
  hosts: number
  /** Hosts that finished, and hosts killed for good before finishing. */
  completed: number
  killed: number
  boundS: number
  /** Completion times from the common start (t = 0), seconds. */
  p50S: number
  p99S: number
  lastS: number
  /** Completion times from each host's own start, seconds. */
  lastOwnS: number
  /** Last completion ÷ bound (from the common start). */
  lastOverBound: number
  seederEgressOverF: number
  lineBytesOverF: number
  /** Bytes hosts received ÷ (completed hosts · F): above 1 by endgame duplicates and cancelled transfers. */
  downloadOverhead: number
  /** Simulated time when the run ended, seconds, and whether its CPU limit ended it. */
  endedS: number
  stopped: boolean
  /** Chunks the hosts hold at the end ÷ (N × chunks): 1 when every host is done. */
  heldFraction: number
  /** The seeder's answers to chunk requests: served, busy, refused (holders named), missing. */
  seederAnswers: SeederAnswers
  events: number
  wallS: number
  /** CPU seconds the run took (user + system), which a shared machine does not inflate as it does wall time. */
  cpuS: number
  peakRssMiB: number
}

export function summarize (s: Scenario, r: SimResult, cost: { wallMs: number, cpuMs: number, peakRssBytes: number }): SimSummary {
  const done = r.hosts.filter(h => h.completedAt !== undefined)
  const times = done.map(h => h.completedAt!).sort((a, b) => a - b)
  const own = done.map(h => h.completedAt! - h.startedAt).sort((a, b) => a - b)
  const bound = lowerBoundMs(s)
  const last = times.length === s.hosts - r.hosts.filter(h => h.killed).length && times.length > 0 ? times[times.length - 1]! : Infinity
  return {
    hosts: s.hosts,
    completed: done.length,
    killed: r.hosts.filter(h => h.killed).length,
    boundS: bound / 1000,
    p50S: quantile(times, 0.5) / 1000,
    p99S: quantile(times, 0.99) / 1000,
    lastS: last / 1000,
    lastOwnS: (own[own.length - 1] ?? NaN) / 1000,
    lastOverBound: last / bound,
    seederEgressOverF: r.seederBytes / s.modelBytes,
    lineBytesOverF: r.lineBytes / s.modelBytes,
    downloadOverhead: done.length === 0 ? NaN : r.hostBytesDown / (done.length * s.modelBytes),
    endedS: r.endedAt / 1000,
    stopped: r.stopped,
    heldFraction: r.chunksHeld / r.chunksTotal,
    seederAnswers: r.seederAnswers,
    events: r.events,
    wallS: cost.wallMs / 1000,
    cpuS: cost.cpuMs / 1000,
    peakRssMiB: cost.peakRssBytes / 2 ** 20
  }
}

/** Nearest-rank quantile of sorted values; NaN when empty. */
export function quantile (sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}
