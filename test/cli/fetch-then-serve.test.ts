/**
 * `modelswarm fetch … -- CMD`, as a container entrypoint runs it: the real binary, a real seeder, and a
 * stand-in server (test/support/model-server.mjs) that reports what it saw when it started.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { makeModel, startFetch, startSeeder, track, treeDigests } from '../support/cli.ts'
import { MODEL_SERVER as SERVER, serverReport, serverSignals } from '../support/model-server.ts'
import { exitDescription } from '../../src/util/process-exit.ts'

describe('fetch-then-serve', () => {
  it('starts the command on the complete model with its location in the environment, forwards SIGTERM and exits with its status', async () => {
    const model = await makeModel(8 * 1024 * 1024)
    const seeder = track(await startSeeder(model))
    const out = join(model.root, 'out')
    const report = join(model.root, 'report.json')
    const f = track(startFetch(seeder, out, ['--upload-rate', '64MiB/s', '--', process.execPath, SERVER, report]))
    const started = await serverReport(report, () => exitDescription(f.proc) === undefined)
    expect(started.env.MODELSWARM_MODEL_DIR).toBe(out)
    expect(started.env.MODELSWARM_MODEL_NAME).toBe(model.name)
    expect(started.env.MODELSWARM_MODEL_VERSION).toBe(model.version)
    const result = await f.waitFor(m => m.ok === true)
    expect(started.env.MODELSWARM_MANIFEST_ID).toBe(result.manifestId)
    // Every file complete and verified when the server started.
    expect(started.files).toEqual(await treeDigests(model.source))
    // Still running, and seeding: another host fetching now gets chunks from it (the seeder sends what
    // the swarm lacks and names holders for the rest).
    const other = track(startFetch(seeder, join(model.root, 'other')))
    expect(await other.exited).toBe(0)
    expect(exitDescription(f.proc)).toBeUndefined()
    expect(await f.kill('SIGTERM')).toBe(42)
    expect(f.stderr.find(m => m.msg === 'stopped seeding')?.bytesUp).toBeGreaterThan(0)
    expect((await serverSignals(report)).map(s => s.signal)).toEqual(['SIGTERM'])
    expect(f.stderr.some(m => m.msg === 'child exited' && m.code === 42)).toBe(true)
  })

  it('a command killed by the signal makes fetch exit 128 + its number; a missing command exits 127', async () => {
    const model = await makeModel(1024 * 1024)
    const seeder = track(await startSeeder(model))
    const report = join(model.root, 'report.json')
    const f = track(startFetch(seeder, join(model.root, 'out'), ['--', process.execPath, SERVER, report, 'die']))
    await serverReport(report, () => exitDescription(f.proc) === undefined)
    expect(await f.kill('SIGTERM')).toBe(143)
    const missing = track(startFetch(seeder, join(model.root, 'out2'), ['--', join(model.root, 'no-such-server')]))
    expect(await missing.exited).toBe(127)
    expect(missing.text.join('\n')).toMatch(/cannot start .*no-such-server/)
  })

  it('usage errors: --upload-rate without a unit, --follow with a pinned version', async () => {
    const model = await makeModel(1024)
    const seeder = track(await startSeeder(model))
    const f = track(startFetch(seeder, join(model.root, 'out'), ['--upload-rate', '400']))
    expect(await f.exited).toBe(2)
    expect(f.text.join('\n')).toMatch(/--upload-rate <rate>' argument '400' is invalid. invalid rate "400": expected bytes or bits per second with a unit/)
    const pinned = track(startFetch(seeder, join(model.root, 'out'), ['--follow'], `${model.name}@${model.version}`))
    expect(await pinned.exited).toBe(2)
    expect(pinned.text.join('\n')).toMatch(/--follow tracks it-llm@latest: drop @v1/)
  })
})
