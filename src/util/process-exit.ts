/**
 * How a child process ended. Node sets `exitCode` only when a process exits by itself; one ended by a signal
 * (SIGKILL from the kernel's OOM killer, SIGSEGV, an untrapped SIGPROF) keeps `exitCode` null and has
 * `signalCode` set instead, so a check of `exitCode` alone waits for it forever.
 */
import type { ChildProcess } from 'node:child_process'

/** `exit status N` or `killed by SIGNAME` once `child` has ended; undefined while it runs. */
export function exitDescription (child: Pick<ChildProcess, 'exitCode' | 'signalCode'>): string | undefined {
  if (child.exitCode !== null) return `exit status ${child.exitCode}`
  if (child.signalCode !== null) return `killed by ${child.signalCode}`
  return undefined
}
