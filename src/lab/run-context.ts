/** What every run needs: the lab, the origin, where to write, limits, and shared helpers. */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runBytes, type CounterSample, type CounterSampler } from './counters.ts'
import { LabError } from './lab-error.ts'
import type { Lab } from './netns.ts'
import type { LabOrigin } from './origin.ts'
import { procStats, type LabProcess } from './processes.ts'
import type { HostResult, RunResult } from './run-result.ts'
import { verifyOutput } from './verify.ts'

export const MODELSWARM_BIN = fileURLToPath(new URL('../../bin/modelswarm.js', import.meta.url))

export interface RunContext {
  lab: Lab
  origin: LabOrigin
  /** a directory of its own for this run */
  workDir: string
  /** give up on a run after this long (ms) */
  timeoutMs: number
  log: (line: string) => void
}

export async function runDir (ctx: RunContext, name: string): Promise<string> {
  const dir = join(ctx.workDir, name)
  await mkdir(dir, { recursive: true })
  return dir
}

/** One host's outcome from the process that completed it (`done`: its first `{"ok":true}` line). */
export async function hostOutcome (
  host: string, t0: number, startedAt: number, p: LabProcess | undefined, outDir: string, ctx: RunContext
): Promise<HostResult> {
  const done = p?.stdout.find(l => l.msg.ok === true)
  return {
    host,
    startedMs: startedAt - t0,
    doneMs: done === undefined ? undefined : done.at - t0,
    ownSeconds: done === undefined ? undefined : Number(done.msg.seconds),
    stats: done === undefined ? undefined : procStats(p?.proc.pid),
    verified: done !== undefined && await verifyOutput(outDir, ctx.origin.files)
  }
}

/** Bytes received so far by all hosts' links, from the latest counter sample. */
export function hostBytesIn (ctx: RunContext, from: CounterSample, now: CounterSample): number {
  let sum = 0
  for (const h of ctx.lab.topology.hosts) sum += (now.ifs[h.role]?.tx ?? 0) - (from.ifs[h.role]?.tx ?? 0)
  return sum
}

/** Polls `done` every `intervalMs` until true; throws after `timeoutMs` with `describe()`'s text. */
export async function until (done: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string, intervalMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await done()) {
    if (Date.now() > deadline) throw new LabError(`timed out after ${timeoutMs} ms: ${describe()}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}

/**
 * The common part of a modelswarm run's result once its hosts are done (or it gave up at `end`): stops the
 * counters and takes the line and seeder-egress bytes from them, and the seeder process's own usage.
 */
export async function swarmRunResult (
  r: { scenario: string, t0: number, end: number, hosts: HostResult[], sampler: CounterSampler, seederPid: number | undefined },
  topology: Parameters<typeof runBytes>[3]
): Promise<Omit<RunResult, 'notes'>> {
  const seederStats = procStats(r.seederPid)
  const last = await r.sampler.stop()
  return {
    system: 'modelswarm',
    scenario: r.scenario,
    t0: r.t0,
    end: r.end,
    hosts: r.hosts,
    samples: r.sampler.samples,
    ...runBytes(r.sampler.samples, last, r.t0, topology),
    seederStats
  }
}
