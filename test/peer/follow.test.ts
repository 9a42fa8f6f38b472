/**
 * Rolling updates (`fetch --follow -- CMD`): a real seeder, a real follower and the stand-in server; new
 * versions are published at the origin while a poller keeps reading `current` as a server would.
 */
import { describe, expect, it } from 'vitest'
import { mkdir, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { generateModel } from '../../src/cli/demo-model.ts'
import { listModelFiles } from '../../src/chunker/chunk-hasher.ts'
import { sleep } from '../../src/util/sleep.ts'
import { makeModel, run, seederVersions, startFetch, startSeeder, track, treeDigests, type Proc, type TestModel } from '../support/cli.ts'
import { freePorts } from '../support/free-port.ts'
import { MODEL_SERVER, serverReport, serverSignals } from '../support/model-server.ts'
import { exitDescription } from '../../src/util/process-exit.ts'

/** File sizes of a model directory (relative path → bytes), the origin's marker excluded. */
async function sizes (dir: string): Promise<Record<string, number>> {
  return Object.fromEntries((await listModelFiles(dir)).filter(f => f.path !== '_SUCCESS').map(f => [f.path, f.size]))
}

/**
 * Reads `current` over and over as a server reloading would: resolve the link once, then list and stat every
 * file there. Each look must find the complete version the link names; `failures` says what it found if not.
 */
interface Looks { looks: number, seen: Set<string>, failures: string[] }

function pollCurrent (current: string, expected: Map<string, Record<string, number>>): { stop: () => Promise<Looks> } {
  let running = true
  const seen = new Set<string>()
  const failures: string[] = []
  let looks = 0
  const loop = (async () => {
    while (running) {
      looks++
      try {
        const dir = await realpath(current)
        const want = expected.get(basename(dir))
        if (want === undefined) throw new Error(`current names ${dir}, not a published version`)
        const got = await sizes(dir)
        if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${dir}: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`)
        seen.add(basename(dir))
      } catch (err) {
        failures.push((err as Error).message)
      }
      await sleep(5)
    }
  })()
  return { stop: async () => { running = false; await loop; return { looks, seen, failures } } }
}

/** A seeder of a new model of `size` bytes and a follower (poll 200 ms) running the stand-in server. */
async function followWithServer (size: number, extra: string[] = []): Promise<{ model: TestModel, root: string, current: string, report: string, f: Proc }> {
  const model = await makeModel(size)
  const seeder = track(await startSeeder(model))
  const root = join(model.root, 'out')
  const report = join(model.root, 'report.json')
  const f = track(startFetch(seeder, root, ['--follow', '--follow-interval', '200ms', ...extra, '--', process.execPath, MODEL_SERVER, report]))
  return { model, root, current: join(root, 'current'), report, f }
}

describe('follow mode', () => {
  it('switches current to each newly published version only once it is complete, signals the server, and keeps the last --keep versions', async () => {
    const { model, root, current, report, f } = await followWithServer(8 * 1024 * 1024, ['--keep', '2'])
    const started = await serverReport(report, () => exitDescription(f.proc) === undefined)
    expect(started.env.MODELSWARM_MODEL_DIR).toBe(current)
    expect(started.target).toBe(join('versions', 'v1'))
    expect(started.files).toEqual(await treeDigests(model.source))

    const expected = new Map([['v1', await sizes(model.source)]])
    const poller = pollCurrent(current, expected)
    // Each new version differs in size from the last, so a look at a mix of two would show.
    for (const [version, size] of [['v2', 12 * 1024 * 1024], ['v3', 4 * 1024 * 1024]] as const) {
      const source = join(model.origin, model.name, version)
      await generateModel(source, size)
      expected.set(version, await sizes(source))
      const publishedAt = Date.now()
      await writeFile(join(source, '_SUCCESS'), '')
      let hup
      while ((hup = (await serverSignals(report)).find(s => s.signal === 'SIGHUP' && s.target === join('versions', version))) === undefined) {
        expect(exitDescription(f.proc)).toBeUndefined()
        await sleep(50)
      }
      // Publish at the origin → server signalled on the new version, on loopback (a figure, not a bound).
      console.log(`follow: ${version} published → host switched and server signalled in ${hup.at - publishedAt} ms (seeder poll 500 ms, follow poll 200 ms)`)
      expect(await treeDigests(current)).toEqual(await treeDigests(source))
    }
    const look = await poller.stop()
    expect(look.failures).toEqual([])
    expect(look.seen).toEqual(new Set(['v1', 'v2', 'v3']))
    expect(look.looks).toBeGreaterThan(10)
    expect((await serverSignals(report)).map(s => s.signal)).toEqual(['SIGHUP', 'SIGHUP'])

    // --keep 2: v1 is gone, v2 (the one before current) and v3 stay.
    expect((await readdir(join(root, 'versions'))).filter(n => !n.includes('.')).sort()).toEqual(['v2', 'v3'])
    expect((await stat(join(root, 'versions', 'v3'))).isDirectory()).toBe(true)

    // The server's exit ends follow, with its status.
    expect(await f.kill('SIGTERM')).toBe(42)
  })

  it('a follow that fails (a new version cannot be switched to) stops its server before it exits', async () => {
    const { model, current, report, f } = await followWithServer(4 * 1024 * 1024)
    await serverReport(report, () => exitDescription(f.proc) === undefined)
    const { pid } = await f.waitFor(m => m.msg === 'serving: child started; following and seeding while it runs')
    // `current` becomes a directory: the next switch cannot rename a link over it (EISDIR).
    await rm(current)
    await mkdir(join(current, 'x'), { recursive: true })
    const source = join(model.origin, model.name, 'v2')
    await generateModel(source, 2 * 1024 * 1024)
    await writeFile(join(source, '_SUCCESS'), '')
    expect(await f.exited).not.toBe(0)
    expect(f.stderr.some(m => m.msg === 'child exited; stopping follow')).toBe(true)
    expect(() => process.kill(pid as number, 0)).toThrow(/ESRCH/)
  })

  it('two followers sharing a host cache take each new version from the swarm once and both switch to it', async () => {
    const model = await makeModel(8 * 1024 * 1024)
    const seeder = track(await startSeeder(model))
    const cache = join(model.root, 'cache')
    const followers = ['a', 'b'].map(d => {
      const root = join(model.root, d)
      return { root, proc: track(startFetch(seeder, root, ['--follow', '--follow-interval', '200ms', '--keep', '1', '--cache-dir', cache])) }
    })
    const switched = async (version: string): Promise<void> => {
      for (const f of followers) await f.proc.waitFor(m => m.ok === true && m.version === version)
    }
    await switched('v1')
    const source = join(model.origin, model.name, 'v2')
    await generateModel(source, 12 * 1024 * 1024)
    await writeFile(join(source, '_SUCCESS'), '')
    await switched('v2')
    const v2 = (await seederVersions(seeder.admin)).find(v => v.version === 'v2')!
    const v2Size = Object.values(await sizes(source)).reduce((n, b) => n + b, 0)
    expect(v2.egressBytes).toBeGreaterThanOrEqual(v2Size)
    expect(v2.egressBytes).toBeLessThan(1.5 * v2Size)
    const results = followers.map(f => f.proc.stdout.find(m => m.ok === true && m.version === 'v2')!)
    expect(results.map(r => r.stats.bytesDown).sort((x, y) => x - y)[0]).toBe(0)
    for (const f of followers) expect(await treeDigests(join(f.root, 'current'))).toEqual(await treeDigests(source))
    // --keep 1: v1 left each follower's versions/ and, once no process held it, the cache.
    for (const f of followers) expect((await readdir(join(f.root, 'versions'))).filter(n => !n.includes('.'))).toEqual(['v2'])
    for (const f of followers) expect(await f.proc.kill('SIGTERM')).toBe(0)
    expect((await readdir(join(cache, model.name))).filter(n => !n.includes('.'))).toEqual(['v2'])
  })

  it('as the Helm chart runs it (fixed --listen and --bulk-port, a swarm key), switches to every new version with one peer id', async () => {
    const model = await makeModel(4 * 1024 * 1024)
    const key = join(model.root, 'swarm.key')
    expect(await track(run(['keygen', '--swarm-key-file', key, '--json'])).exited).toBe(0)
    const seeder = track(await startSeeder(model, ['--swarm-key-file', key]))
    const root = join(model.root, 'out')
    const [libp2pPort, bulkPort] = await freePorts(2)
    // Not startFetch: its --listen on port 0 would be added to this one.
    const f = track(run(['--log-level', 'info', 'fetch', model.name, '--out', root, '--bootstrap', seeder.addr, '--trust', seeder.peerId, '--swarm-key-file', key,
      '--listen', `/ip4/127.0.0.1/tcp/${libp2pPort}`, '--bulk-port', String(bulkPort), '--follow', '--follow-interval', '200ms', '--timeout', '30s', '--json']))
    // A switch, or the warning follow logs when a version's fetch fails (it would retry it forever).
    const outcome = async (version: string): Promise<Record<string, any>> =>
      await f.waitFor(m => (m.ok === true && m.version === version) || (m.msg?.startsWith('fetching the new version failed') === true && m.version === version))
    expect(await outcome('v1')).toMatchObject({ ok: true })
    for (const [version, size] of [['v2', 6 * 1024 * 1024], ['v3', 2 * 1024 * 1024]] as const) {
      const source = join(model.origin, model.name, version)
      await generateModel(source, size)
      await writeFile(join(source, '_SUCCESS'), '')
      expect(await outcome(version), `switch to ${version}`).toMatchObject({ ok: true })
      expect(await treeDigests(join(root, 'current'))).toEqual(await treeDigests(source))
    }
    // One node for the whole follow: every version's swarm ran under the same peer id.
    const fetching = f.stderr.filter(m => m.msg === 'fetching')
    expect(fetching.map(m => m.version)).toEqual(['it-llm@v1', 'it-llm@v2', 'it-llm@v3'])
    expect(new Set(fetching.map(m => m.peer)).size).toBe(1)
    expect(await f.kill('SIGTERM')).toBe(0)
  })
})
