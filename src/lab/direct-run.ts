/**
 * Baseline: what the platform did before — every host reads every file straight from the origin over the
 * line (WebHDFS OPEN, one `curl` per host, all hosts at once). Same namespaces, rates and bytes as the swarm.
 */
import { join } from 'node:path'
import { runBytes, sampleCounters } from './counters.ts'
import { LabError } from './lab-error.ts'
import { spawnIn, type LabProcess } from './processes.ts'
import { hostOutcome, runDir, until, type RunContext } from './run-context.ts'
import type { HostResult, RunResult } from './run-result.ts'
import { exitDescription } from '../util/process-exit.ts'

/** Every file of the model from `root` into `out`, in one curl process; `{"ok":true,"seconds":S}` printed on success. */
export function curlArgv (urls: Array<{ url: string, path: string }>, out: string): string[] {
  const fetches = urls.flatMap(u => ['-o', join(out, u.path), u.url])
  // One shell so the host's own clock covers only the transfer; `date +%s.%N` keeps sub-second resolution.
  const script = 'start=$(date +%s.%N); curl -sS --fail -L --create-dirs "$@" && ' +
    'awk -v s="$start" -v e="$(date +%s.%N)" \'BEGIN { printf "{\\"ok\\":true,\\"seconds\\":%.3f}\\n", e - s }\''
  return ['sh', '-c', script, 'curl-all', ...fetches]
}

export async function runDirect (ctx: RunContext): Promise<RunResult> {
  const { topology } = ctx.lab
  const dir = await runDir(ctx, 'direct')
  const root = '/lab/direct'
  await ctx.origin.writeVersion(root)
  const urls = ctx.origin.files.map(f => ({ url: ctx.origin.openUrl(root, f), path: f.path }))
  const sampler = await sampleCounters(topology.switchNs, 500)
  const procs: LabProcess[] = []
  try {
    const t0 = Date.now()
    ctx.log(`direct: ${topology.hosts.length} hosts read from the origin over the line`)
    for (const h of topology.hosts) procs.push(spawnIn(h.netns, h.role, curlArgv(urls, join(dir, h.role))))
    await until(() => {
      const failed = procs.find(p => exitDescription(p.proc) !== undefined && p.proc.exitCode !== 0)
      if (failed !== undefined) throw new LabError(`direct read on ${failed.name} failed (${exitDescription(failed.proc)}): ${failed.text.join(' | ')}`)
      return procs.every(p => p.proc.exitCode === 0)
    }, ctx.timeoutMs, () => `${procs.filter(p => exitDescription(p.proc) === undefined).length} hosts still reading`)
    const end = Date.now()
    const last = await sampler.stop()
    const hosts: HostResult[] = []
    // curl has exited: no CPU or RSS figures for it (they would be curl's, not comparable anyway).
    for (const [i, p] of procs.entries()) hosts.push(await hostOutcome(topology.hosts[i]!.role, t0, p.spawnedAt, p, join(dir, topology.hosts[i]!.role), ctx))
    return {
      system: 'direct',
      scenario: 'warm',
      t0,
      end,
      hosts,
      samples: sampler.samples,
      ...runBytes(sampler.samples, last, t0, topology),
      notes: ['every host reads the origin over the line with curl (WebHDFS OPEN); no CPU/RSS figures (curl exits)']
    }
  } finally {
    await sampler.stop().catch(() => undefined)
    await Promise.all(procs.map(p => p.stop()))
  }
}
