/**
 * The HDFS seeder's promises, each a user story against a real HDFS (MiniDFSCluster) with real
 * processes: a `modelswarm seed --hdfs` daemon and `modelswarm fetch` hosts. Bytes over the line are
 * counted by the seeder's WebHDFS client at the HTTP layer and read from its admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { chunkLayout, decodeHeader, spansOf } from '../../src/chunker/manifest.ts'
import { startMiniHdfs, type MiniHdfs } from '../hdfs/mini-hdfs.ts'
import { contentBytes } from '../hdfs/mini-hdfs-content.ts'
import { cachePath, expectedDigests, models, startHdfsSeeder, totalSize, waitForVersion, writeFiles, type HdfsFile } from '../hdfs/seeder-process.ts'
import { startFetch, track, treeDigests } from '../support/cli.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

const V1: HdfsFile[] = [
  { path: 'config.json', size: 2000, seed: 3 },
  { path: 'model-00001.safetensors', size: GiB, seed: 1 },
  { path: 'model-00002.safetensors', size: 40 * MiB + 17, seed: 2 },
  { path: 'tokenizer/tokenizer.json', size: 3 * MiB + 5, seed: 4 }
]
// v2 retrains the first shard; config, tokenizer and the second shard are unchanged.
const V2: HdfsFile[] = [...V1.filter(f => f.path !== 'model-00001.safetensors'), { path: 'model-00001.safetensors', size: 48 * MiB, seed: 5 }]

async function postPreheat (admin: string, name: string, version: string): Promise<{ status: number, body: Record<string, any> }> {
  const res = await fetch(`${admin}/v1/preheat`, { method: 'POST', body: JSON.stringify({ name, version }) })
  return { status: res.status, body: await res.json() as Record<string, any> }
}

describe('HDFS seeder, one NameNode', () => {
  let hdfs: MiniHdfs
  let work: string
  let seederCache: string
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ms-hdfs-seed-'))
    seederCache = join(work, 'seeder')
    hdfs = await startMiniHdfs()
    await writeFiles(hdfs, '/ms/llm/v1', V1)
    await hdfs.command('touch /ms/llm/v1/_SUCCESS')
  })
  afterAll(async () => {
    await hdfs?.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('pulls a published model with a 1 GiB shard exactly once, and four hosts get byte-identical copies', async () => {
    const seeder = track(await startHdfsSeeder(hdfs, { root: '/ms', cacheDir: seederCache, extra: ['--chunk-size', '32MiB'] }))
    // Preheat on publish: the pull starts before any host asks.
    const v = await waitForVersion(seeder.admin, 'llm@v1', x => x.state === 'ready')
    const hosts = Array.from({ length: 4 }, (_, i) => track(startFetch(seeder, join(work, `host-${i}`), ['--linger', '10m'], 'llm@v1')))
    await Promise.all(hosts.map(h => h.waitFor(m => m.ok === true, 110_000)))
    const expected = expectedDigests(V1)
    for (let i = 0; i < hosts.length; i++) expect(await treeDigests(join(work, `host-${i}`))).toEqual(expected)
    const { line } = await models(seeder.admin)
    console.log(`model ${totalSize(V1)} bytes; read from HDFS at the HTTP layer: ${line.originBytesRead} bytes (${(line.originBytesRead / totalSize(V1)).toFixed(4)}×), retried ${v.bytesRetried}`)
    expect(v.bytes).toBe(totalSize(V1))
    expect(v.bytesPulled).toBe(totalSize(V1))
    expect(v.bytesRetried).toBe(0)
    expect(line.originBytesRead).toBe(totalSize(V1))
  })

  it('a second version pulls only its changed shard: shared files are copied from the cache, never pulled again', async () => {
    await writeFiles(hdfs, '/ms/llm/v2', V2)
    await hdfs.command('touch /ms/llm/v2/_SUCCESS')
    const seeder = track(await startHdfsSeeder(hdfs, { root: '/ms', cacheDir: seederCache, extra: ['--chunk-size', '32MiB'] }))
    const v2 = await waitForVersion(seeder.admin, 'llm@v2', x => x.state === 'ready')
    const changed = 48 * MiB
    console.log(`v2: ${v2.bytes} bytes, pulled ${v2.bytesPulled}, copied from v1 ${v2.bytesCopied}`)
    expect(v2.bytesPulled).toBe(changed)
    expect(v2.bytesCopied).toBe(totalSize(V2) - changed)
    expect((await models(seeder.admin)).line.originBytesRead).toBe(changed)
    // `latest` moved to v2, and a host that asks for it gets v2's bytes.
    const host = track(startFetch(seeder, join(work, 'latest-host'), [], 'llm'))
    const result = await host.waitFor(m => m.ok === true, 60_000)
    expect(result.version).toBe('v2')
    expect(await treeDigests(join(work, 'latest-host'))).toEqual(expectedDigests(V2))
  })

  it('a missing root, an unreadable file, a file shrinking and a file deleted during the pull end in clear errors and no corrupt cache', async () => {
    const cacheDir = join(work, 'seeder-errors')
    const missing = track(await startHdfsSeeder(hdfs, { root: '/no-such-root', cacheDir: join(work, 'seeder-missing') }))
    const ready = await (await fetch(`${missing.admin}/readyz`)).json() as Record<string, any>
    expect(ready.originReachable).toBe(false)
    expect(ready.originError).toMatch(/\/no-such-root does not exist/)
    expect(await postPreheat(missing.admin, 'llm', 'v1')).toMatchObject({ status: 404 })

    // Written by root with mode 000: the seeder's user (alice) may list it but not read it.
    await writeFiles(hdfs, '/changing/secret/v1', [{ path: 'w.bin', size: 4 * MiB, seed: 9 }])
    await hdfs.command('chmod /changing/secret/v1/w.bin 000')
    await hdfs.command('touch /changing/secret/v1/_SUCCESS')
    const seeder = track(await startHdfsSeeder(hdfs, { root: '/changing', cacheDir, extra: ['--chunk-size', '4MiB', '--line-rate', '16MiB/s', '--read-size', '4MiB'] }))
    const denied = await waitForVersion(seeder.admin, 'secret@v1', x => x.state === 'failed')
    expect(denied.error).toMatch(/Permission denied: user=alice/)

    await writeFiles(hdfs, '/changing/shrink/v1', [{ path: 'w.bin', size: 64 * MiB, seed: 10, blockSize: MiB }])
    await hdfs.command('touch /changing/shrink/v1/_SUCCESS')
    await waitForVersion(seeder.admin, 'shrink@v1', x => x.chunksHeld >= 2)
    await hdfs.command('truncate /changing/shrink/v1/w.bin 8388608')
    const shrunk = await waitForVersion(seeder.admin, 'shrink@v1', x => x.state === 'failed')
    expect(shrunk.error).toMatch(/shrank to 8388608 bytes/)
    await expectNoCorruption(cachePath(cacheDir, 'shrink', 'v1'), 10)

    await writeFiles(hdfs, '/changing/gone/v1', [{ path: 'w.bin', size: 64 * MiB, seed: 11, blockSize: MiB }])
    await hdfs.command('touch /changing/gone/v1/_SUCCESS')
    await waitForVersion(seeder.admin, 'gone@v1', x => x.chunksHeld >= 2)
    await hdfs.command('delete /changing/gone/v1/w.bin')
    const gone = await waitForVersion(seeder.admin, 'gone@v1', x => x.state === 'failed')
    expect(gone.error).toMatch(/FileNotFoundException/)
    await expectNoCorruption(cachePath(cacheDir, 'gone', 'v1'), 11)
  })

  it('a seeder killed mid-pull resumes from its bitfield after a restart and pulls only the chunks it lacks', async () => {
    const files: HdfsFile[] = [{ path: 'weights.bin', size: 128 * MiB, seed: 12, blockSize: 16 * MiB }]
    await writeFiles(hdfs, '/resume/m/v1', files)
    await hdfs.command('touch /resume/m/v1/_SUCCESS')
    const cacheDir = join(work, 'seeder-resume')
    const first = track(await startHdfsSeeder(hdfs, { root: '/resume', cacheDir, extra: ['--chunk-size', '8MiB', '--line-rate', '32MiB/s'] }))
    const before = await waitForVersion(first.admin, 'm@v1', x => x.chunksHeld >= 5)
    await first.kill('SIGKILL')
    const again = track(await startHdfsSeeder(hdfs, { root: '/resume', cacheDir }))
    const published = await again.waitFor(m => m.msg === 'version published')
    const v = await waitForVersion(again.admin, 'm@v1', x => x.state === 'ready')
    const line = (await models(again.admin)).line
    console.log(`killed at ≥ ${before.chunksHeld}/16 chunks; restart resumed ${published.resumed}, pulled ${line.originBytesRead} bytes`)
    // Chunks written before the kill are kept (a torn last one may be re-verified away); only the rest crosses the line.
    expect(published.resumed).toBeGreaterThanOrEqual(before.chunksHeld - 1)
    expect(line.originBytesRead).toBe((16 - published.resumed) * 8 * MiB)
    expect(v.bytesRetried).toBe(0)
    const host = track(startFetch(again, join(work, 'host-resume'), [], 'm@v1'))
    await host.waitFor(m => m.ok === true, 60_000)
    expect(await treeDigests(join(work, 'host-resume'))).toEqual(expectedDigests(files))
  })

  it('with HDFS shut down, held versions are still served and latest still resolves, also after a seeder restart', async () => {
    const seeder = track(await startHdfsSeeder(hdfs, { root: '/ms', cacheDir: seederCache }))
    await waitForVersion(seeder.admin, 'llm@v2', x => x.state === 'ready')
    await hdfs.stop()
    const v1Host = track(startFetch(seeder, join(work, 'down-v1'), [], 'llm@v1'))
    await v1Host.waitFor(m => m.ok === true, 110_000)
    expect(await treeDigests(join(work, 'down-v1'))).toEqual(expectedDigests(V1))

    await seeder.kill('SIGTERM')
    const restarted = track(await startHdfsSeeder(hdfs, { root: '/ms', cacheDir: seederCache }))
    const ready = await (await fetch(`${restarted.admin}/readyz`)).json() as Record<string, any>
    expect(ready.originReachable).toBe(false)
    expect((await models(restarted.admin)).versions.map(v => `${v.name}@${v.version}:${v.state}`).sort()).toEqual(['llm@v1:ready', 'llm@v2:ready'])
    const latestHost = track(startFetch(restarted, join(work, 'down-latest'), [], 'llm'))
    expect((await latestHost.waitFor(m => m.ok === true, 60_000)).version).toBe('v2')
    expect(await treeDigests(join(work, 'down-latest'))).toEqual(expectedDigests(V2))
  })
})

describe('HDFS seeder, HA NameNode pair', () => {
  let hdfs: MiniHdfs
  let work: string
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ms-hdfs-ha-'))
    hdfs = await startMiniHdfs({ ha: true })
  })
  afterAll(async () => {
    await hdfs?.stop()
    await rm(work, { recursive: true, force: true })
  })

  // Each pull is slowed by the line budget so the NameNode change lands in its middle.
  const pullThrough = async (version: string, seed: number, disrupt: () => Promise<void>): Promise<void> => {
    const files: HdfsFile[] = [{ path: 'weights.bin', size: 192 * MiB, seed, blockSize: 16 * MiB }]
    await writeFiles(hdfs, `/ha/m/${version}`, files)
    await hdfs.command(`touch /ha/m/${version}/_SUCCESS`)
    const seeder = track(await startHdfsSeeder(hdfs, { root: '/ha', cacheDir: join(work, `seeder-${version}`), extra: ['--chunk-size', '8MiB', '--line-rate', '48MiB/s'] }))
    const during = await waitForVersion(seeder.admin, `m@${version}`, x => x.chunksHeld >= 6)
    await disrupt()
    const v = await waitForVersion(seeder.admin, `m@${version}`, x => x.state === 'ready')
    console.log(`${version}: NameNode change at ${during.chunksHeld}/${v.chunks} chunks; pulled ${v.bytesPulled} of ${v.bytes} bytes, ${v.bytesRetried} retried`)
    expect(v.state).toBe('ready')
    // Nothing crossed the line twice except retried ranges, and those are at most the reads in flight.
    expect(v.bytesPulled - v.bytesRetried).toBe(v.bytes)
    expect(v.bytesRetried).toBeLessThanOrEqual(4 * 8 * MiB)
    const host = track(startFetch(seeder, join(work, `host-${version}`), [], `m@${version}`))
    await host.waitFor(m => m.ok === true, 60_000)
    expect(await treeDigests(join(work, `host-${version}`))).toEqual(expectedDigests(files))
  }

  it('the active NameNode turns standby in the middle of a pull: the pull completes on the other one', async () => {
    await pullThrough('v1', 21, () => hdfs.failover())
  })

  it('the active NameNode is shut down in the middle of a pull and the standby takes over: the pull completes', async () => {
    await pullThrough('v2', 22, async () => {
      const active = hdfs.active
      await hdfs.command(`shutdown-nn ${active}`)
      await hdfs.command(`failover ${active} ${1 - active}`)
    })
  })
})

/** The version never appeared complete, and every chunk its bitfield claims holds the origin's bytes. */
async function expectNoCorruption (dir: string, seed: number): Promise<void> {
  await expect(stat(dir)).rejects.toThrow(/ENOENT/)
  await expect(stat(join(`${dir}.modelswarm`, 'complete'))).rejects.toThrow(/ENOENT/)
  const header = decodeHeader(await readFile(join(`${dir}.modelswarm`, 'header.json')))
  const layout = chunkLayout(header)
  const have = new Bitfield(layout.count, await readFile(join(`${dir}.modelswarm`, 'bitfield')))
  expect(have.count).toBeGreaterThan(0)
  const data = await readFile(join(`${dir}.partial`, 'w.bin'))
  for (const i of have.setIndexes()) {
    const { offset, length } = { offset: spansOf(layout, i)[0]!.offset, length: layout.length[i]! }
    expect(Buffer.from(contentBytes(seed, offset, length)).equals(data.subarray(offset, offset + length)), `chunk ${i}`).toBe(true)
  }
}
