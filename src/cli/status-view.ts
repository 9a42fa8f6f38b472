/**
 * What `modelswarm status` shows, as pure functions of the seeders' snapshots and the clock: a table of
 * versions (who has them, who is stuck, how much crossed the line, how much the swarm carried itself)
 * and, for one version, a table of its hosts.
 */
import { formatModelVersion, type ModelVersion } from '../model-version.ts'
import { hostState, type HostState } from '../seeder/host-state.ts'
import type { HostSnapshot, SeederSnapshot, VersionSnapshot } from '../seeder/snapshot.ts'
import { formatBytes, formatRate } from '../util/units.ts'

export type { HostState }

export interface VersionStatus {
  name: string
  version: string
  state: string
  bytes: number
  /** Share of the version's chunks the seeders hold, 0…1. */
  pulled: number
  /** Bytes read from the origin for it. */
  lineBytes: number
  /** Bytes the seeders sent to hosts, and bytes hosts sent each other. */
  seederSent: number
  hostsSent: number
  hosts: Array<HostSnapshot & { status: HostState }>
  error?: string
}

/** Merges what every seeder reports: a version held by two seeders is one row, its hosts the union. */
export function versionStatuses (snapshots: readonly SeederSnapshot[]): VersionStatus[] {
  const byKey = new Map<string, VersionStatus>()
  for (const snap of snapshots) {
    for (const v of snap.versions) {
      const key = formatModelVersion(v)
      const row = byKey.get(key) ?? {
        name: v.name, version: v.version, state: v.state, bytes: v.bytes ?? 0, pulled: 0, lineBytes: 0, seederSent: 0, hostsSent: 0, hosts: [], error: v.error
      }
      byKey.set(key, row)
      row.pulled = Math.max(row.pulled, pulledShare(v))
      row.lineBytes += v.bytesPulled ?? 0
      row.seederSent += v.egressBytes ?? 0
      if (v.state === 'ready') row.state = 'ready'
      for (const h of v.hosts ?? []) {
        const seen = row.hosts.findIndex(x => x.id === h.id)
        const { state, reason } = hostState(h)
        const status = { ...h, status: state, ...(reason === undefined ? {} : { reason }) }
        if (seen < 0) row.hosts.push(status)
        else if (row.hosts[seen]!.ageMs > h.ageMs) row.hosts[seen] = status
      }
    }
  }
  for (const row of byKey.values()) row.hostsSent = row.hosts.reduce((s, h) => s + h.bytesUp, 0)
  return [...byKey.values()].sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version, 'en', { numeric: true }))
}

/** The versions table. Offload: bytes hosts sent each other ÷ bytes the seeders sent (how much the swarm carried). */
export function renderVersions (rows: readonly VersionStatus[]): string {
  const table = [['MODEL', 'VERSION', 'SIZE', 'PULLED', 'LINE', 'HOSTS done/fetching/stalled/gone', 'OFFLOAD', 'STATE']]
  for (const r of rows) {
    const n = (s: HostState): number => r.hosts.filter(h => h.status === s).length
    table.push([r.name, r.version, formatBytes(r.bytes), `${Math.floor(r.pulled * 100)}%`, formatBytes(r.lineBytes),
      `${n('complete')}/${n('fetching')}/${n('stalled')}/${n('gone')}`, r.seederSent === 0 ? '-' : `${(r.hostsSent / r.seederSent).toFixed(1)}`, r.error === undefined ? r.state : `${r.state}: ${r.error}`])
  }
  return columns(table)
}

/** One version's hosts: name and address beside the peer id, progress, rate, state and why it is stuck. */
export function renderHosts (row: VersionStatus): string {
  const table = [['HOST', 'ADDRESS', 'PEER', 'DONE', 'RATE', 'STATE', 'LAST REPORT', 'REASON']]
  for (const h of [...row.hosts].sort((a, b) => a.have / Math.max(1, a.total) - b.have / Math.max(1, b.total))) {
    table.push([h.hostname ?? '-', h.address ?? '-', `…${h.id.slice(-8)}`, `${Math.floor(h.have * 100 / Math.max(1, h.total))}%`, formatRate(h.rateDown),
      h.status, `${Math.round(h.ageMs / 1000)} s ago`, h.reason ?? ''])
  }
  return `${formatModelVersion(row)}: ${row.state}, ${formatBytes(row.bytes)}, line ${formatBytes(row.lineBytes)}, seeders sent ${formatBytes(row.seederSent)}, hosts sent ${formatBytes(row.hostsSent)}\n${columns(table)}`
}

export function findVersion (rows: readonly VersionStatus[], want: ModelVersion): VersionStatus | undefined {
  return rows.find(r => r.name === want.name && r.version === want.version)
}

function pulledShare (v: VersionSnapshot): number {
  return (v.chunks ?? 0) === 0 ? (v.state === 'ready' ? 1 : 0) : (v.chunksHeld ?? 0) / v.chunks!
}

function columns (rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map(r => r[c]!.length)))
  return rows.map(r => r.map((cell, c) => c === r.length - 1 ? cell : cell.padEnd(widths[c]!)).join('  ')).join('\n')
}
