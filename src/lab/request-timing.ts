/**
 * Where a reader's wait goes, from the hosts' debug logs (SwarmLog#chunkRequestEnded, one line per chunk
 * request when the lab runs with `--log-level debug`): the urgent requests' time to the first byte (the
 * uploader's queue and the round trip), their transfers, and the second copies — hedges, endgame — aborted
 * once the first arrived. Two sessions needed this breakdown for the shard scenario (README, "Read during
 * fetch") and got it from a temporary patch; the shard report now prints it.
 */
import { SWARM_MSG } from '../peer/swarm-log.ts'
import { percentile } from './metrics.ts'

/** Whether a host's stderr JSON line is the end of an urgent chunk request. */
export function isUrgentRequestEnd (m: Record<string, unknown>): boolean {
  return m.msg === SWARM_MSG.chunkRequestEnded && m.urgent === true
}

/** One Markdown note on urgent requests' outcomes and timing (`lines` from isUrgentRequestEnd); undefined when there are none. */
export function urgentRequestsNote (lines: ReadonlyArray<Record<string, unknown>>): string | undefined {
  if (lines.length === 0) return undefined
  const num = (v: unknown): number | undefined => typeof v === 'number' ? v : undefined
  const ok = lines.filter(m => m.outcome === 'ok')
  const aborted = lines.filter(m => m.outcome === 'aborted')
  const wait = lines.flatMap(m => (num(m.transferMs) === undefined ? [] : [num(m.waitMs)!]))
  const transfer = ok.flatMap(m => num(m.transferMs) ?? [])
  const s = (ms: number): string => Number.isNaN(ms) ? 'n/a' : `${(ms / 1000).toFixed(2)} s`
  return `urgent chunk requests (the hosts' debug logs): ${lines.length}, ${ok.length} delivered, ${aborted.length} aborted ` +
    `(${aborted.filter(m => num(m.transferMs) !== undefined).length} after bytes had come: second copies, hedges or endgame); ` +
    `time to the first byte p50 ${s(percentile(wait, 0.5))}, p90 ${s(percentile(wait, 0.9))}; ` +
    `delivered, first byte to last p50 ${s(percentile(transfer, 0.5))}, p90 ${s(percentile(transfer, 0.9))}, max ${s(transfer.length === 0 ? NaN : Math.max(...transfer))}`
}
