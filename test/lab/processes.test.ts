// Lab processes in a real network namespace (root, as CI runs): how they end is always seen. Two lab hosts
// once ignored their stop for five minutes and the lab waited with them; four killed by a signal were
// waited for until the run's timeout.
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnIn } from '../../src/lab/processes.ts'
import { exitDescription } from '../../src/util/process-exit.ts'

const NS = `msl-test-proc-${process.pid}`

beforeAll(() => { execFileSync('ip', ['netns', 'add', NS]) })
afterAll(() => { execFileSync('ip', ['netns', 'del', NS]) })

describe('lab processes', () => {
  it('a process that ignores SIGTERM is SIGKILLed once the grace has passed, and stop() resolves', async () => {
    const p = spawnIn(NS, 'stubborn', ['sh', '-c', 'trap "" TERM; echo \'{"ready":true}\'; while :; do sleep 1; done'])
    await p.waitFor(m => m.ready === true, 10_000)
    await p.stop('SIGTERM', 300)
    expect(exitDescription(p.proc)).toBe('killed by SIGKILL')
  })

  it('waiting for output ends at once, naming the signal, when a signal ends the process', async () => {
    const p = spawnIn(NS, 'profiled', ['sh', '-c', 'kill -PROF $$'])
    await expect(p.waitFor(() => false, 60_000)).rejects.toThrow(/profiled exited \(killed by SIGPROF\)/)
  })
})
