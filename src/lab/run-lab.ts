/**
 * One lab run: build the namespaces, start the origin, run modelswarm in each requested scenario and each
 * requested baseline one after another on the same network, write the report, tear everything down.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { currentBundle } from '../cli/bundle.ts'
import { sha256GiBps, USUAL_SHA256_GIBPS } from './cpu-speed.ts'
import { LabError } from './lab-error.ts'
import type { LabParams } from './metrics.ts'
import { createLab } from './netns.ts'
import { startOrigin } from './origin.ts'
import { writeReport } from './report.ts'
import type { RunContext } from './run-context.ts'
import type { RunResult } from './run-result.ts'
import { runDirect } from './direct-run.ts'
import { runFollow } from './follow-run.ts'
import { runShard } from './shard-run.ts'
import { runSwarm, SCENARIOS as FETCH_SCENARIOS } from './swarm-run.ts'
import { checkLibtorrent, runTorrent } from './torrent-run.ts'
import { planTopology } from './topology.ts'

export const BASELINES = ['direct', 'bittorrent'] as const
export type Baseline = typeof BASELINES[number]
/** modelswarm scenarios: plain fetches (swarm-run.ts), follow mode (follow-run.ts), the first shard through the gateway (shard-run.ts). */
export const SCENARIOS = [...FETCH_SCENARIOS, 'follow', 'shard'] as const
export type Scenario = typeof SCENARIOS[number]

export interface LabOptions extends LabParams {
  scenarios: Scenario[]
  baselines: Baseline[]
  /** where runs and the report are written */
  outDir: string
  timeoutMs: number
  seed: number
  /** BitTorrent piece size, bytes */
  pieceSize: number
  /** modelswarm processes' --log-level (their logs are kept in the run's directory) */
  logLevel: string
  /** keep every host's copy of the model and the seeders' caches (N·F per run) after verification */
  keepData?: boolean
  log: (line: string) => void
}

export interface LabOutcome {
  runs: RunResult[]
  reportPath: string
  ratios: string[]
}

function paramsOf (o: LabOptions): LabParams & { scenarios: Scenario[], baselines: Baseline[], pieceSize: number, seed: number } {
  const { hosts, size, files, line, up, down, seederUp, chunkSize, mtu, scenarios, baselines, pieceSize, seed } = o
  return { hosts, size, files, line, up, down, seederUp, chunkSize, mtu, scenarios, baselines, pieceSize, seed }
}

/** Removes the directories inside each run's directory (model copies, caches), keeping logs and the torrent file. */
async function removeModelCopies (outDir: string): Promise<void> {
  for (const run of await readdir(outDir, { withFileTypes: true })) {
    if (!run.isDirectory()) continue
    for (const entry of await readdir(join(outDir, run.name), { withFileTypes: true })) {
      if (entry.isDirectory()) await rm(join(outDir, run.name, entry.name), { recursive: true, force: true })
    }
  }
}

async function runScenario (ctx: RunContext, scenario: Scenario, o: LabOptions): Promise<RunResult> {
  const { chunkSize, logLevel } = o
  if (scenario === 'follow') return await runFollow(ctx, { chunkSize, logLevel })
  if (scenario === 'shard') return await runShard(ctx, { chunkSize, logLevel })
  return await runSwarm(ctx, { scenario, chunkSize, seed: o.seed, logLevel })
}

export async function runLab (o: LabOptions): Promise<LabOutcome> {
  if (o.baselines.includes('bittorrent')) await checkLibtorrent()
  await mkdir(o.outDir, { recursive: true })
  // Outputs of an earlier run would be taken for this run's (a fetch resumes from what it finds).
  if ((await readdir(o.outDir)).length > 0) throw new LabError(`${o.outDir} is not empty: give --out a new directory`)
  // The box is shared: the load around the run says how far CPU contention may have shaped it.
  const loadBefore = loadavg()[0]!
  const speedBefore = sha256GiBps()
  // Which code the processes start (the launcher's choice): the bundle starts each ~0.3 CPU-s sooner.
  const bundle = currentBundle(fileURLToPath(new URL('../..', import.meta.url)))
  const code = 'entry' in bundle ? `the CLI bundle (${relative(process.cwd(), bundle.entry)})` : `src/ (${bundle.stale})`
  o.log(`lab: modelswarm processes start ${code}`)
  const lab = createLab(planTopology({ id: String(process.pid), hosts: o.hosts, line: o.line, up: o.up, down: o.down, seederUp: o.seederUp, mtu: o.mtu }))
  const runs: RunResult[] = []
  try {
    o.log(`lab: ${o.hosts} hosts in namespaces ${lab.topology.switchNs.replace(/-sw$/, '-*')}; starting the origin (MiniDFSCluster)`)
    const origin = await startOrigin({ netns: lab.topology.offline.netns, addr: lab.topology.offline.addr, size: o.size, files: o.files })
    try {
      const ctx = { lab, origin, workDir: o.outDir, timeoutMs: o.timeoutMs, log: o.log }
      await origin.warmUp()
      for (const s of o.scenarios) runs.push(await runScenario(ctx, s, o))
      if (o.baselines.includes('direct')) runs.push(await runDirect(ctx))
      if (o.baselines.includes('bittorrent')) runs.push(await runTorrent(ctx, { pieceSize: o.pieceSize }))
    } finally {
      await origin.stop()
    }
  } finally {
    lab.destroy()
  }
  const bad = runs.flatMap(r => r.hosts.filter(h => h.doneMs !== undefined && !h.verified).map(h => `${r.system} ${r.scenario} ${h.host}`))
  const failed = runs.flatMap(r => r.hosts.filter(h => h.failed !== undefined).map(h => `${r.system} ${r.scenario} ${h.host}`))
  if (o.keepData !== true) await removeModelCopies(o.outDir)
  const sha256 = { before: speedBefore, after: sha256GiBps() }
  const notes = [
    `1-minute load average ${loadBefore.toFixed(1)} before the lab, ${loadavg()[0]!.toFixed(1)} after, on ${cpus().length} CPUs`,
    `SHA-256 on one core: ${sha256.before.toFixed(2)} GiB/s before the lab, ${sha256.after.toFixed(2)} after (${USUAL_SHA256_GIBPS} on an idle box, ` +
      'FACTS.md): below that, this box gave the hosts less CPU than usual — compare runs only at similar speeds',
    `at the lab's start, modelswarm processes would run ${code}`
  ]
  const { path, ratios } = await writeReport(o.outDir, o, runs, notes)
  // Everything measured, for figures the report does not show (sampled counters included).
  await writeFile(join(o.outDir, 'results.json'), JSON.stringify({ params: paramsOf(o), sha256GiBps: sha256, runs }, null, 1))
  if (bad.length > 0) throw new LabError(`outputs differ from the origin: ${bad.join(', ')} (report: ${path})`)
  if (failed.length > 0) throw new LabError(`hosts gave up: ${failed.join(', ')} (report: ${path})`)
  return { runs, reportPath: path, ratios }
}
