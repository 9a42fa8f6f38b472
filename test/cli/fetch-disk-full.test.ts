/**
 * "Never a wrong byte", end to end with real processes: `modelswarm fetch` onto a small tmpfs that another
 * writer fills mid-download exits 6 (disk full); once space is freed the rerun exits 0 and its files are
 * byte-identical to the origin's. Root only (it mounts a tmpfs).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { killTracked, makeModel, startFetch, startSeeder, track, treeDigests } from '../support/cli.ts'
import { canMount, mountTmpfs } from '../support/tmpfs.ts'
import { SWARM_MSG } from '../../src/peer/swarm-log.ts'

const MiB = 1024 * 1024
const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  await killTracked()
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe.skipIf(!canMount)('fetch onto a disk that fills up', () => {
  it('exits 6 when the disk fills mid-download; after space is freed the rerun exits 0 with byte-identical files', async () => {
    const model = await makeModel(16 * MiB)
    cleanups.push(() => rm(model.root, { recursive: true, force: true }))
    // 16 MiB of model + fetch's 64 MiB reserve fit; the line rate keeps the download going for a few seconds.
    const fs = await mountTmpfs(96 * MiB)
    cleanups.push(fs.destroy)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '4MiB/s']))
    const out = join(fs.dir, 'model')

    const first = track(startFetch(seeder, out))
    await first.waitFor(m => m.msg === SWARM_MSG.fetching)
    // Another writer takes the disk, leaving half a chunk: the next chunk write is cut short, then ENOSPC.
    await fs.fill(MiB / 2)
    expect(await first.exited).toBe(6)

    await fs.drain()
    const second = track(startFetch(seeder, out))
    const done = await second.waitFor(m => m.ok === true, 60_000)
    expect(await second.exited).toBe(0)
    console.log(`rerun resumed ${done.resumedChunks} of 16 chunks`)
    expect(await treeDigests(out)).toEqual(await treeDigests(model.source))
  })
})
