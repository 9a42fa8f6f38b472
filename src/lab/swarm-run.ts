/**
 * modelswarm in the lab: a seeder in its namespace pulling from the origin over the line, one `fetch`
 * process per host namespace, in one of four scenarios:
 * - warm: the seeder holds the version before the hosts start;
 * - cold: the version's marker is written at the origin as the fetches start;
 * - churn: warm, and once the hosts hold half of N·F, 10 % of them (at least one, chosen at random among
 *   those not done) are SIGKILLed and half of those (rounded up) restarted on the same output directory;
 * - late: warm, with a quarter of the hosts (at least one) started only once the others hold half of their bytes.
 */
import { join } from 'node:path'
import { createRng, randomInt } from '../util/random.ts'
import { sampleCounters } from './counters.ts'
import { seederCountsNote, seederVersion, startSeeder } from './lab-seeder.ts'
import { LAB_MODEL } from './origin.ts'
import { spawnIn, type LabProcess } from './processes.ts'
import { hostBytesIn, hostOutcome, MODELSWARM_BIN, runDir, until, type RunContext, swarmRunResult } from './run-context.ts'
import type { HostResult, RunResult } from './run-result.ts'
import { exitDescription } from '../util/process-exit.ts'

export const SCENARIOS = ['warm', 'cold', 'churn', 'late'] as const
export type Scenario = typeof SCENARIOS[number]

/** Share of hosts killed under churn, and of hosts joining late (issue: "10 % of hosts SIGKILLed"). */
const CHURN_SHARE = 0.1
const LATE_SHARE = 0.25
/** Each host's libp2p port (fixed, as the Helm chart fixes it; every host has a namespace of its own). */
export const HOST_PORT = 4001

export interface SwarmOptions {
  scenario: Scenario
  chunkSize?: number
  /** seeds the choice of churn victims */
  seed: number
  /** modelswarm's --log-level; every process's log is kept beside its output */
  logLevel: string
}

interface Slot {
  index: number
  out: string
  proc?: LabProcess
  startedAt?: number
  killed?: boolean
  restarted?: boolean
  /** the fetch exited without completing (not killed by the lab): its status and last words */
  failed?: string
}

export async function runSwarm (ctx: RunContext, opts: SwarmOptions): Promise<RunResult> {
  const { topology } = ctx.lab
  const dir = await runDir(ctx, `modelswarm-${opts.scenario}`)
  const hdfsRoot = `/lab/${opts.scenario}`
  const notes: string[] = []
  await ctx.origin.writeVersion(hdfsRoot)
  if (opts.scenario !== 'cold') await ctx.origin.publish(hdfsRoot)

  const sampler = await sampleCounters(topology.switchNs, 500)
  const first = sampler.samples[0]!
  const procs: LabProcess[] = []
  try {
    const { proc: seeder, peerId, bootstrap } = await startSeeder(ctx, { dir, hdfsRoot, chunkSize: opts.chunkSize, logLevel: opts.logLevel })
    procs.push(seeder)
    if (opts.scenario !== 'cold') {
      ctx.log(`modelswarm ${opts.scenario}: seeder pulling over the line`)
      await until(async () => (await seederVersion(topology.seeder.netns))?.state === 'ready', ctx.timeoutMs, () => 'the seeder never held the version')
    }

    const slots: Slot[] = topology.hosts.map((h, index) => ({ index, out: join(dir, h.role, 'model') }))
    const start = (slot: Slot): void => {
      const h = topology.hosts[slot.index]!
      slot.startedAt = Date.now()
      slot.proc = spawnIn(h.netns, h.role, [process.execPath, MODELSWARM_BIN, '--log-level', opts.logLevel, 'fetch', `${LAB_MODEL.name}@${LAB_MODEL.version}`,
        '--out', slot.out, '--bootstrap', bootstrap, '--trust', peerId, '--listen', `/ip4/${h.addr}/tcp/${HOST_PORT}`,
        '--json', '--linger', '10m', '--timeout', '2m'], { logFile: join(dir, `${h.role}.log`) })
      procs.push(slot.proc)
    }
    const lateCount = opts.scenario === 'late' ? Math.max(1, Math.round(LATE_SHARE * slots.length)) : 0
    const early = slots.slice(0, slots.length - lateCount)
    const late = slots.slice(slots.length - lateCount)

    const t0 = Date.now()
    ctx.log(`modelswarm ${opts.scenario}: starting ${early.length} hosts${lateCount > 0 ? ` (${lateCount} later)` : ''}`)
    for (const s of early) start(s)
    if (opts.scenario === 'cold') await ctx.origin.publish(hdfsRoot)

    const F = ctx.origin.size
    let midwayDone = false
    const isDone = (s: Slot): boolean => s.proc?.stdout.some(l => l.msg.ok === true) === true
    const midway = (): void => {
      midwayDone = true
      if (opts.scenario === 'late') {
        ctx.log(`modelswarm late: ${late.length} late joiners start`)
        for (const s of late) start(s)
      } else if (opts.scenario === 'churn') {
        const rng = createRng(opts.seed)
        const candidates = slots.filter(s => !isDone(s))
        const victims: Slot[] = []
        for (let k = Math.max(1, Math.round(CHURN_SHARE * slots.length)); k > 0 && candidates.length > 0; k--) {
          victims.push(...candidates.splice(randomInt(rng, candidates.length), 1))
        }
        ctx.log(`modelswarm churn: SIGKILL ${victims.map(v => topology.hosts[v.index]!.role).join(', ')}`)
        const restart = victims.slice(0, Math.ceil(victims.length / 2))
        const gone: Array<Promise<unknown>> = []
        for (const v of victims) {
          v.killed = true
          // Decided now, so the run cannot end in the moment between the kill and the restart.
          v.restarted = restart.includes(v)
          v.proc!.proc.kill('SIGKILL')
          if (v.restarted) gone.push(v.proc!.exited)
          // Killed by the lab, not failed: no process until the restart, if any.
          v.proc = undefined
        }
        void Promise.all(gone).then(() => { for (const v of restart) start(v) })
      }
    }
    const pending = (): Slot[] => slots.filter(s => !isDone(s) && s.failed === undefined && !(s.killed === true && s.restarted !== true))
    await until(() => {
      const now = sampler.samples.at(-1)!
      if (!midwayDone && (opts.scenario === 'late' || opts.scenario === 'churn') && hostBytesIn(ctx, first, now) >= early.length * F / 2) midway()
      // A fetch that gives up is a result, not a reason to stop measuring the others.
      for (const s of slots) {
        const ended = s.proc === undefined ? undefined : exitDescription(s.proc.proc)
        if (s.failed === undefined && ended !== undefined && !isDone(s) && (s.killed !== true || s.restarted === true)) {
          s.failed = `${ended}: ${s.proc!.text.join(' | ')}`
          ctx.log(`modelswarm ${opts.scenario}: ${topology.hosts[s.index]!.role} failed (${s.failed})`)
        }
      }
      return midwayDone === (opts.scenario === 'late' || opts.scenario === 'churn') && pending().length === 0
    }, ctx.timeoutMs, () => `hosts not done: ${pending().map(s => topology.hosts[s.index]!.role).join(', ')}`)
    const end = Date.now()

    const hosts: HostResult[] = []
    for (const s of slots) {
      const r = await hostOutcome(topology.hosts[s.index]!.role, t0, s.startedAt!, s.killed === true && s.restarted !== true ? undefined : s.proc, s.out, ctx)
      hosts.push({ ...r, killed: s.killed, restarted: s.restarted, late: late.includes(s), failed: s.failed })
      if (s.failed !== undefined) notes.push(`${r.host} failed: ${s.failed}`)
    }
    notes.push(await seederCountsNote(topology.seeder.netns))
    return {
      ...await swarmRunResult({ scenario: opts.scenario, t0, end, hosts, sampler, seederPid: seeder.proc.pid }, topology),
      notes
    }
  } finally {
    await sampler.stop().catch(() => undefined)
    await Promise.all(procs.map(p => p.stop()))
  }
}
