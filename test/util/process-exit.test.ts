// A child ended by a signal has exitCode null: the lab once waited its whole 10-minute timeout for four hosts
// killed by SIGPROF, because it checked exitCode alone. Real processes, no mocks.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { exitDescription } from '../../src/util/process-exit.ts'

async function ended (child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
}

describe('exitDescription', () => {
  it('is undefined while the process runs', async () => {
    const child = spawn('sleep', ['30'])
    expect(exitDescription(child)).toBeUndefined()
    child.kill('SIGKILL')
    await ended(child)
  })

  it('names the exit status of a process that exits by itself, 0 included', async () => {
    const failing = spawn('sh', ['-c', 'exit 3'])
    const ok = spawn('true')
    await Promise.all([ended(failing), ended(ok)])
    expect(exitDescription(failing)).toBe('exit status 3')
    expect(exitDescription(ok)).toBe('exit status 0')
  })

  it('names the signal of a process a signal ended, where exitCode stays null', async () => {
    const killed = spawn('sleep', ['30'])
    killed.kill('SIGKILL')
    // Ended by a signal it did not handle itself, as SIGPROF ends a process whose profiler timer outlived it.
    const selfKilled = spawn('sh', ['-c', 'kill -PROF $$'])
    await Promise.all([ended(killed), ended(selfKilled)])
    expect(killed.exitCode).toBeNull()
    expect(exitDescription(killed)).toBe('killed by SIGKILL')
    expect(exitDescription(selfKilled)).toBe('killed by SIGPROF')
  })
})
