/**
 * A point-in-time view of a seeder, as plain data: what the admin API serves at `/v1/models`, and what
 * the status command and metrics read. Nothing here reaches into a live object after it is built.
 */
import type { ProgressReport } from '../peer/protocols/session/codec.ts'
import type { Seeder, VersionState } from './seeder.ts'
import type { DecisionCounts } from './upload-policy.ts'

export interface HostSnapshot extends ProgressReport {
  /** The host's peer id. */
  id: string
  /** When its last report arrived, ms since the epoch, and how long ago. */
  at: number
  ageMs: number
  /** The IP the seeder reaches it at. */
  address?: string
  /**
   * The host's session with this seeder: open, closed by the host, or cut because it stopped answering.
   * Absent from seeders that predate it (read as closed).
   */
  connection?: 'open' | 'closed' | 'unresponsive'
}

export interface VersionSnapshot {
  name: string
  version: string
  headerId?: string
  state: VersionState
  error?: string
  chunks?: number
  chunksHeld?: number
  /** Model size, bytes. */
  bytes?: number
  /** Bytes read from the origin for it, retries included; of those, bytes of failed attempts. */
  bytesPulled?: number
  bytesRetried?: number
  /** Bytes filled from identical files of other cached versions. */
  bytesCopied?: number
  /** Chunks found rotten in the cache after a host's report, dropped and got again (origin or, in an HA group, swarm). */
  chunksRepaired?: number
  /** Chunks hosts reported failing verification after receiving them from this seeder. */
  chunksReportedCorrupt?: number
  /** Bytes this seeder uploaded to hosts. */
  egressBytes?: number
  /** The upload gate's decisions on hosts' chunk requests, by outcome and reason (src/seeder/upload-policy.ts). */
  uploadDecisions?: DecisionCounts
  neighbours?: number
  lastUsedAgeMs?: number
  hosts?: HostSnapshot[]
}

export interface LineSnapshot {
  origin: string
  /** When the counters were read (ms since the epoch): rates from two answers do not include request latency. */
  at: number
  /** Bytes received from the origin at its transport layer, retries included. */
  originBytesRead: number
  bytesPulled: number
  bytesRetried: number
  bytesCopied: number
}

export interface SeederSnapshot {
  versions: VersionSnapshot[]
  line: LineSnapshot
}

export function snapshotOf (seeder: Seeder, now = Date.now()): SeederSnapshot {
  const held = [...seeder.versions.values()]
  const versions: VersionSnapshot[] = held.map(v => ({
    name: v.ref.name,
    version: v.ref.version,
    headerId: v.meta.headerId,
    state: v.state,
    error: v.error,
    chunks: v.store.layout.count,
    chunksHeld: v.store.have.count,
    bytes: v.store.layout.totalSize,
    bytesPulled: v.pull.bytesRead,
    bytesRetried: v.pull.bytesRetried,
    bytesCopied: v.bytesCopied,
    chunksRepaired: v.chunksRepaired,
    chunksReportedCorrupt: v.chunksReportedCorrupt,
    egressBytes: v.swarm.stats.bytesUp,
    uploadDecisions: { ...v.policy.decisions },
    neighbours: v.swarm.neighbours,
    lastUsedAgeMs: now - v.lastUsedAt,
    hosts: [...v.swarm.reports].map(([id, { ended, ...r }]) => ({ id, ...r, ageMs: now - r.at, connection: ended === undefined ? 'open' : ended.unresponsive ? 'unresponsive' : 'closed' }))
  }))
  for (const r of seeder.refused.values()) versions.push({ name: r.ref.name, version: r.ref.version, state: 'failed', error: r.error })
  const sum = (f: (v: (typeof held)[number]) => number): number => held.reduce((s, v) => s + f(v), 0)
  return {
    versions,
    line: {
      origin: seeder.origin.description,
      at: now,
      originBytesRead: seeder.origin.bytesRead,
      bytesPulled: sum(v => v.pull.bytesRead),
      bytesRetried: sum(v => v.pull.bytesRetried),
      bytesCopied: sum(v => v.bytesCopied)
    }
  }
}
