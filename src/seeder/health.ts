/**
 * Whether a seeder is ready to be sent traffic, and whether its process is alive, as pure functions of
 * what it reports and the clock, so Kubernetes' probes (and the systemd unit's readiness check) can fail.
 */
import type { SeederSnapshot } from './snapshot.ts'

/** How long the origin may be unreachable before `/readyz` fails: cached versions are still served meanwhile. */
export const DEFAULT_ORIGIN_GRACE_MS = 60_000

export interface ReadinessInput {
  snapshot: SeederSnapshot
  /** True while the versions an earlier run cached are being published again. */
  recovering: boolean
  /** Since when (ms) the origin has been unreachable, while it is. */
  originDownSince: number | undefined
  originError: string | undefined
  /** Versions that must be served (pins), as NAME@VERSION. */
  pins: ReadonlySet<string>
  /** How long the origin may be unreachable before the seeder is not ready, in ms. */
  originGraceMs: number
  now: number
}

export interface Verdict { ok: boolean, reasons: string[] }

/**
 * Not ready while recovering its cache, when the origin has been unreachable for longer than the grace
 * (cached versions are still served, but new ones cannot arrive), or when a pinned version failed.
 */
export function readiness (input: ReadinessInput): Verdict {
  const reasons: string[] = []
  if (input.recovering) reasons.push('recovering: publishing the versions already in the cache')
  if (input.originDownSince !== undefined && input.now - input.originDownSince > input.originGraceMs) {
    reasons.push(`origin unreachable for ${Math.round((input.now - input.originDownSince) / 1000)} s: ${input.originError ?? 'unknown error'}`)
  }
  for (const v of input.snapshot.versions) {
    if (v.state === 'failed' && input.pins.has(`${v.name}@${v.version}`)) reasons.push(`pinned ${v.name}@${v.version} cannot be served: ${v.error ?? 'failed'}`)
  }
  return { ok: reasons.length === 0, reasons }
}

/** Alive unless the event loop stalled: the longest delay it saw since the last check, in ms, over `wedgedMs`. */
export function liveness (maxLoopDelayMs: number, wedgedMs: number): Verdict {
  return maxLoopDelayMs > wedgedMs ? { ok: false, reasons: [`event loop stalled for ${Math.round(maxLoopDelayMs)} ms`] } : { ok: true, reasons: [] }
}
