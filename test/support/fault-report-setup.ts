/**
 * Global setup of the fault suite's report (fault-report.ts): a fresh JSON-lines file for the run, and at the
 * end of the run, when any fault test wrote to it, the report printed and written to
 * $MODELSWARM_FAULT_REPORT (default: ms-fault-report.txt in the temp folder, replaced by each run).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { formatFault, type FaultLine } from './fault-report.ts'

export default async function setup (project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'ms-fault-report-'))
  const lines = join(dir, 'lines.jsonl')
  project.provide('faultReport', lines)
  return async () => {
    const text = await readFile(lines, 'utf8').catch(() => '')
    await rm(dir, { recursive: true, force: true })
    if (text === '') return
    const faults = text.trim().split('\n').map(l => JSON.parse(l) as FaultLine)
    const hosts = faults.reduce((n, f) => n + f.hosts, 0)
    const report = [
      `fault report: ${faults.length} faults injected; hosts completed ${faults.reduce((n, f) => n + f.completed, 0)}/${hosts}, ` +
        `outputs verified ${faults.reduce((n, f) => n + f.verified, 0)}/${hosts}; ` +
        `bytes re-fetched ${(faults.reduce((n, f) => n + f.refetchedBytes, 0) / 1024 / 1024).toFixed(2)} MiB in all`,
      ...faults.map(f => `  - ${formatFault(f)}`)
    ].join('\n') + '\n'
    const file = process.env.MODELSWARM_FAULT_REPORT ?? join(tmpdir(), 'ms-fault-report.txt')
    await writeFile(file, report)
    process.stdout.write(`\n${report}(written to ${file})\n`)
  }
}
