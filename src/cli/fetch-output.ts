/** What fetch prints when a version is complete, and its upload cap: shared by plain fetch and follow mode. */
import { formatModelVersion } from '../model-version.ts'
import type { FetchResult } from '../peer/fetch.ts'
import { TokenBucket } from '../util/token-bucket.ts'
import { formatBytes, formatRate } from '../util/units.ts'

/** CPU time of this process so far: what a download costs the host, beside how long it took. */
function cpuSeconds (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/**
 * The upload cap's bucket: refills at `rate`, holds a fiftieth of a second of it (at least 256 KiB, as the
 * seeder's line budget), so bursts stay short against the inference traffic sharing the NIC.
 */
export function uploadBudget (rate: number | undefined): TokenBucket | undefined {
  return rate === undefined ? undefined : new TokenBucket({ rate, burst: Math.max(256 * 1024, Math.floor(rate / 50)) })
}

/** Prints the result line: JSON with --json, one human line otherwise. */
export function printResult (result: FetchResult, out: string, json: boolean): void {
  if (json) process.stdout.write(JSON.stringify({ ok: true, out, ...result, peakRssBytes: process.resourceUsage().maxRSS * 1024, cpuSeconds: cpuSeconds() }) + '\n')
  else process.stdout.write(`${formatModelVersion(result)} → ${out}: ${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s (${formatRate(result.bytes / result.seconds)}), manifest ${result.manifestId}\n`)
}
