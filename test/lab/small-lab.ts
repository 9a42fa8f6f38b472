/** A small lab run for the suite (root): fast links, N hosts, F bytes in 2 files; its directory removed by `remove`. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkLabPrerequisites } from '../../src/lab/netns.ts'
import { runLab, type Baseline, type LabOutcome, type Scenario } from '../../src/lab/run-lab.ts'

export const MIB = 2 ** 20
const MBIT = 1e6 / 8

export interface SmallLab { dir: string, outcome: LabOutcome, remove: () => Promise<void> }

/** Runs the lab at 400 Mbit/s line and host download, 100 Mbit/s host upload, 200 Mbit/s seeder upload. */
export async function runSmallLab (o: { hosts: number, size: number, scenarios: Scenario[], baselines: Baseline[], logLevel?: string }): Promise<SmallLab> {
  checkLabPrerequisites()
  const dir = await mkdtemp(join(tmpdir(), 'ms-lab-'))
  const remove = async (): Promise<void> => { await rm(dir, { recursive: true, force: true }) }
  try {
    const outcome = await runLab({
      ...o,
      files: 2,
      line: 400 * MBIT,
      up: 100 * MBIT,
      down: 400 * MBIT,
      seederUp: 200 * MBIT,
      outDir: dir,
      timeoutMs: 90_000,
      seed: 1,
      pieceSize: MIB,
      logLevel: o.logLevel ?? 'info',
      log: () => {}
    })
    return { dir, outcome, remove }
  } catch (err) {
    await remove()
    throw err
  }
}
