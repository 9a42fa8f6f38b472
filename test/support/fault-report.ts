/**
 * The fault suite's report: each fault test records one line (what it injected, how many hosts completed,
 * bytes fetched again, outputs verified), and the global teardown (fault-report-setup.ts) prints them all
 * at the end of the run and writes them to a file. Figures are what the test measured, never targets.
 */
import { appendFile } from 'node:fs/promises'
import { inject } from 'vitest'

declare module 'vitest' {
  export interface ProvidedContext {
    /** JSON-lines file the fault tests append their lines to (made by fault-report-setup.ts). */
    faultReport: string
  }
}

export interface FaultLine {
  /** The fault, in a few words. */
  fault: string
  /** What was done to which process, and when. */
  injected: string
  /** Hosts expected to complete, and those that did with verified output. */
  hosts: number
  completed: number
  verified: number
  /** Bytes received again or in vain: over what the hosts needed (endgame duplicates, given-up requests, lost partial chunks). */
  refetchedBytes: number
  /** Anything else measured (durations, resumed chunks), for a person. */
  notes: string
}

/** Records `line` in the run's fault report, and prints it at once too (the report comes at the end). */
export async function reportFault (line: FaultLine): Promise<void> {
  console.log(`fault report line: ${formatFault(line)}`)
  await appendFile(inject('faultReport'), JSON.stringify(line) + '\n')
}

export function formatFault (l: FaultLine): string {
  return `${l.fault}: injected ${l.injected}; hosts completed ${l.completed}/${l.hosts}, outputs verified ${l.verified}/${l.hosts}; ` +
    `bytes re-fetched ${(l.refetchedBytes / 1024 / 1024).toFixed(2)} MiB; ${l.notes}`
}
