/**
 * Disk full mid-transfer, with real processes on a real small filesystem (a tmpfs another writer fills):
 * on a host mid-fetch, and on the seeder's cache mid-pull. Each must say so clearly, hold no unverified byte
 * (every chunk its bitfield claims equals the origin's bytes), and resume once space is freed without
 * fetching or pulling a verified chunk again. Root only (it mounts a tmpfs); each test adds a line to the
 * fault report (test/support/fault-report.ts).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { chunkRanges, hashFileRanges } from '../../src/chunker/chunk-hasher.ts'
import { chunkLayout, decodeHeader } from '../../src/chunker/manifest.ts'
import { SWARM_MSG } from '../../src/peer/swarm-log.ts'
import { SEEDER_MSG } from '../../src/seeder/seeder-log.ts'
import { killTracked, makeModel, seederVersions, startFetch, startSeeder, track, treeDigests } from '../support/cli.ts'
import { reportFault } from '../support/fault-report.ts'
import { canMount, mountTmpfs, type Tmpfs } from '../support/tmpfs.ts'
import { until } from '../support/poll.ts'
import { heldOnDisk } from '../support/store-state.ts'

const MiB = 1024 * 1024
const mounts: Tmpfs[] = []
afterEach(async () => {
  await killTracked()
  for (const m of mounts.splice(0)) await m.destroy()
})

/**
 * The chunks a store at `dir` (a fetch's --out, or a version in the seeder's cache) claims in its bitfield,
 * their bytes, and those of them whose bytes in `dir`.partial differ from the origin's: read from the files themselves,
 * not from the store's own hashes.
 */
async function claimedChunks (dir: string, source: string): Promise<{ claimed: number, bytes: number, wrong: number[] }> {
  const header = decodeHeader(await readFile(`${dir}.modelswarm/header.json`))
  const layout = chunkLayout(header)
  const bits = new Bitfield(layout.count, await readFile(`${dir}.modelswarm/bitfield`))
  const wrong: number[] = []
  let bytes = 0
  for (const i of bits.setIndexes()) {
    bytes += layout.length[i]!
    const held = await hashFileRanges(chunkRanges(`${dir}.partial`, header, layout, i))
    if (!held.equals(await hashFileRanges(chunkRanges(source, header, layout, i)))) wrong.push(i)
  }
  return { claimed: bits.count, bytes, wrong }
}

describe.skipIf(!canMount)('disk full mid-transfer (root: mounts a tmpfs)', () => {
  it('a host whose disk fills mid-fetch exits 6 naming the fix, holds no unverified byte, and resumes without refetching', async () => {
    const model = await makeModel(16 * MiB)
    // 16 MiB of model + fetch's 64 MiB reserve fit; the line rate keeps the download going for a few seconds.
    const fs = await mountTmpfs(96 * MiB)
    mounts.push(fs)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '4MiB/s']))
    await seeder.waitFor(m => m.msg === SEEDER_MSG.versionPublished)
    const { chunks } = (await seederVersions(seeder.admin))[0]!
    const out = join(fs.dir, 'model')

    const first = track(startFetch(seeder, out))
    await first.waitFor(m => m.msg === SWARM_MSG.fetching)
    // Another writer takes the disk, leaving half a chunk: the next chunk write is cut short, then ENOSPC.
    await fs.fill(MiB / 2)
    expect(await first.exited).toBe(6)
    const failure = first.stdout.find(m => m.ok === false)
    expect(failure).toMatchObject({ code: 'MS_DISK_FULL', exit: 6, message: expect.stringMatching(/no space left/), hint: expect.stringMatching(/free space/) })
    expect(first.text.join('\n')).toMatch(/hint: free space/)
    // Nothing unverified anywhere: the output never appeared, and every chunk the bitfield claims is the origin's.
    expect(existsSync(out)).toBe(false)
    const atFailure = await claimedChunks(out, model.source)
    expect(atFailure.wrong).toEqual([])
    expect(atFailure.claimed).toBeLessThan(chunks)

    await fs.drain()
    const second = track(startFetch(seeder, out))
    const done = await second.waitFor(m => m.ok === true, 60_000)
    expect(await second.exited).toBe(0)
    expect(done.resumedChunks).toBe(atFailure.claimed)
    expect(done.stats.chunksDown).toBe(chunks - atFailure.claimed)
    expect(await treeDigests(out)).toEqual(await treeDigests(model.source))
    const refetched = done.stats.bytesDown - (done.bytes - atFailure.bytes)
    console.log(`disk full on a host at ${atFailure.claimed}/${chunks} chunks: exit 6 (${failure!.code}); rerun resumed ${done.resumedChunks}, fetched ${done.stats.chunksDown}, output verified`)
    await reportFault({
      fault: 'disk full on a host mid-fetch',
      injected: `its --out filesystem filled by another writer at ${atFailure.claimed}/${chunks} chunks, then freed`,
      hosts: 1,
      completed: 1,
      verified: 1,
      refetchedBytes: refetched,
      notes: `exit 6 ${failure!.code}, hint "${failure!.hint}"; ${atFailure.claimed} claimed chunks all equal the origin's; rerun resumed ${done.resumedChunks} and fetched ${done.stats.chunksDown}`
    })
  })

  it('the seeder\'s cache fills mid-pull: it reports it, keeps serving what it holds, and resumes the pull once space is freed', async () => {
    const model = await makeModel(16 * MiB)
    // 16 MiB of model + the seeder's 64 MiB reserve fit at admission.
    const fs = await mountTmpfs(96 * MiB)
    mounts.push(fs)
    const cache = join(fs.dir, 'cache')
    const seeder = track(await startSeeder(model, ['--cache-dir', cache, '--chunk-size', '1MiB', '--line-rate', '2MiB/s']))
    await seeder.waitFor(m => m.msg === SEEDER_MSG.versionPublished)
    const { chunks } = (await seederVersions(seeder.admin))[0]!
    const store = join(cache, 'versions', model.name, model.version)
    const host = track(startFetch(seeder, join(model.root, 'host'), ['--timeout', '5m']))
    expect(await until(async () => (await heldOnDisk(store, chunks)).count >= 4, 30_000)).toBe(true)
    await fs.fill(MiB / 2)

    const failed = await seeder.waitFor(m => m.msg === SEEDER_MSG.pullFailed, 30_000)
    expect(failed).toMatchObject({ code: 'MS_DISK_FULL', err: expect.stringMatching(/no space left/) })
    const [v] = await seederVersions(seeder.admin)
    expect(v).toMatchObject({ state: 'failed', error: expect.stringMatching(/resumes by itself once/) })
    const atFailure = await claimedChunks(store, model.source)
    expect(atFailure.wrong).toEqual([])
    expect(atFailure.claimed).toBeLessThan(chunks)
    expect(v!.chunksHeld).toBe(atFailure.claimed)
    const pulledAtFailure = v!.bytesPulled as number
    // It keeps serving what it holds: the host gets every chunk the seeder has.
    expect(await until(async () => (await heldOnDisk(join(model.root, 'host'), chunks)).count >= atFailure.claimed, 30_000)).toBe(true)

    await fs.drain()
    await seeder.waitFor(m => m.msg === SEEDER_MSG.versionPulled, 60_000)
    const done = await host.waitFor(m => m.ok === true, 60_000)
    expect(await treeDigests(join(model.root, 'host'))).toEqual(await treeDigests(model.source))
    const [after] = await seederVersions(seeder.admin)
    expect(after).toMatchObject({ state: 'ready', chunksHeld: chunks })
    // Resumed, not restarted: after the failure it read exactly the chunks it did not hold.
    expect(after!.bytesPulled - pulledAtFailure).toBe(model.size - atFailure.bytes)
    const lost = pulledAtFailure - atFailure.bytes
    console.log(`disk full on the seeder at ${atFailure.claimed}/${chunks} chunks pulled: ${failed.code}; ${(lost / MiB).toFixed(1)} MiB read but not stored; resumed the pull after space was freed; host done in ${done.seconds.toFixed(1)} s`)
    await reportFault({
      fault: 'disk full on the seeder mid-pull',
      injected: `its cache filesystem filled by another writer at ${atFailure.claimed}/${chunks} chunks pulled, then freed`,
      hosts: 1,
      completed: 1,
      verified: 1,
      refetchedBytes: lost + done.stats.bytesDown - model.size,
      notes: `seeder logged ${failed.code} and kept serving its ${atFailure.claimed} chunks (all equal the origin's); pull resumed by itself, line total ${(after!.bytesPulled / after!.bytes).toFixed(2)} x F`
    })
  })
})
