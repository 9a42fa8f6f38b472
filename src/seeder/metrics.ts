/**
 * The seeder's Prometheus metrics (prom-client), read from its snapshot at each scrape: bytes over the
 * line and bytes served per version, chunks held and repaired, hosts per state, whether the origin is up,
 * and Node's process metrics. Names and units follow Prometheus conventions (`_bytes_total`, `_seconds`);
 * labels are the model and version (bounded by what the cache holds) and the host state — never a peer id.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { Seeder } from './seeder.ts'
import { snapshotOf, type VersionSnapshot } from './snapshot.ts'
import { hostState, type HostState } from './host-state.ts'

/** The `state` label of modelswarm_hosts for each host state (the names hosts report). */
const HOST_LABEL: Record<HostState, string> = { fetching: 'downloading', complete: 'seeding', stalled: 'stalled', gone: 'gone' }


type VersionCounter = 'bytesPulled' | 'bytesRetried' | 'bytesCopied' | 'egressBytes' | 'chunksRepaired' | 'chunksReportedCorrupt'

export function seederMetrics (seeder: Seeder): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'modelswarm_' })
  const labelNames = ['model', 'version'] as const
  let snapshot = snapshotOf(seeder)
  // One snapshot per scrape, taken by the first collector (prom-client collects the metrics in order).
  new Gauge({
    name: 'modelswarm_origin_up',
    help: 'Whether the origin answered the last listing (1) or not (0).',
    registers: [registry],
    collect () {
      snapshot = snapshotOf(seeder)
      this.set(seeder.originReachable ? 1 : 0)
    }
  })
  new Counter({
    name: 'modelswarm_origin_read_bytes_total',
    help: 'Bytes received from the origin at its transport layer (the line), retries included.',
    registers: [registry],
    collect () {
      this.reset()
      this.inc(snapshot.line.originBytesRead)
    }
  })
  const perVersion = (name: string, help: string, field: VersionCounter): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect () {
        this.reset()
        for (const v of held(snapshot.versions)) this.inc({ model: v.name, version: v.version }, v[field] ?? 0)
      }
    })
  }
  perVersion('modelswarm_pulled_bytes_total', 'Bytes read from the origin for a version, retries included.', 'bytesPulled')
  perVersion('modelswarm_retried_bytes_total', 'Of the pulled bytes, those of attempts that failed and were read again.', 'bytesRetried')
  perVersion('modelswarm_copied_bytes_total', 'Bytes filled from identical files of other cached versions instead of the origin.', 'bytesCopied')
  perVersion('modelswarm_sent_bytes_total', 'Bytes this seeder uploaded to hosts for a version.', 'egressBytes')
  perVersion('modelswarm_chunks_repaired_total', 'Chunks found rotten in the cache after a host reported them, dropped and got again (from the origin, or in an HA group from a neighbour).', 'chunksRepaired')
  perVersion('modelswarm_verification_failures_total', 'Chunks hosts reported failing verification after receiving them from this seeder (re-hashed here; see modelswarm_chunks_repaired_total).', 'chunksReportedCorrupt')
  new Counter({
    name: 'modelswarm_upload_decisions_total',
    help: 'Hosts\' chunk requests the seeder\'s upload gate decided, by decision: served-unheld (no host holds the chunk), served-holders-failed, served-refused-too-often (the escape from refusals), refused-held (sent to holders), refused-pending (sent to the host it is on its way to). A reader\'s urgent requests skip the gate.',
    labelNames: [...labelNames, 'decision'],
    registers: [registry],
    collect () {
      this.reset()
      for (const v of held(snapshot.versions)) {
        for (const [decision, n] of Object.entries(v.uploadDecisions ?? {})) this.inc({ model: v.name, version: v.version, decision }, n)
      }
    }
  })
  new Counter({
    name: 'modelswarm_peer_sent_bytes_total',
    help: 'Bytes the hosts reporting to this seeder sent each other, from their reports (every seeder a host reports to counts it: take the max over seeders, not the sum).',
    labelNames,
    registers: [registry],
    collect () {
      this.reset()
      for (const v of held(snapshot.versions)) this.inc({ model: v.name, version: v.version }, (v.hosts ?? []).reduce((s, h) => s + h.bytesUp, 0))
    }
  })
  new Gauge({
    name: 'modelswarm_version_bytes',
    help: 'Size of a version (F), in bytes.',
    labelNames,
    registers: [registry],
    collect () {
      this.reset()
      for (const v of held(snapshot.versions)) this.set({ model: v.name, version: v.version }, v.bytes ?? 0)
    }
  })
  new Gauge({
    name: 'modelswarm_version_chunks_held_ratio',
    help: 'Share of a version\'s chunks the seeder holds (1 once pulled).',
    labelNames,
    registers: [registry],
    collect () {
      this.reset()
      for (const v of held(snapshot.versions)) this.set({ model: v.name, version: v.version }, (v.chunks ?? 0) === 0 ? 1 : (v.chunksHeld ?? 0) / v.chunks!)
    }
  })
  new Gauge({
    name: 'modelswarm_version_state',
    help: 'The state a version is in (1 for its state: pulling, ready or failed).',
    labelNames: [...labelNames, 'state'],
    registers: [registry],
    collect () {
      this.reset()
      for (const v of snapshot.versions) this.set({ model: v.name, version: v.version, state: v.state }, 1)
    }
  })
  new Gauge({
    name: 'modelswarm_hosts',
    help: 'Hosts per state, from their progress reports: downloading, seeding, stalled (no progress, or no report while connected or not answering), or gone (no report for 30 s, connection closed).',
    labelNames: [...labelNames, 'state'],
    registers: [registry],
    collect () {
      this.reset()
      for (const v of held(snapshot.versions)) {
        const counts = { downloading: 0, seeding: 0, stalled: 0, gone: 0 }
        for (const h of v.hosts ?? []) counts[HOST_LABEL[hostState(h).state] as keyof typeof counts]++
        for (const [state, n] of Object.entries(counts)) this.set({ model: v.name, version: v.version, state }, n)
      }
    }
  })
  return registry
}

/** Versions the seeder holds (a refused one has no counters). */
function held (versions: readonly VersionSnapshot[]): VersionSnapshot[] {
  return versions.filter(v => v.headerId !== undefined)
}
