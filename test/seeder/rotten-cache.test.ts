/**
 * One rotten byte in the seeder's cache, with real processes: the host that gets the bad chunk from its
 * only source fails at once (exit 4) naming the seeder and the chunk, instead of waiting out --timeout and
 * blaming the network; the seeder, told, re-verifies its copy, drops it, pulls it again and says so; a
 * rerun gets byte-identical output.
 */
import { describe, expect, it } from 'vitest'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { makeModel, seederVersions, startFetch, startSeeder, track, treeDigests } from '../support/cli.ts'

const MiB = 1024 * 1024

describe('a rotten chunk in the seeder\'s cache', () => {
  it('fails the host fast with the chunk and seeder named, and the seeder repairs its copy from the origin', async () => {
    const model = await makeModel(32 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '4MiB']))
    await seeder.waitFor(m => m.msg === 'version pulled')
    const [v] = await seederVersions(seeder.admin)
    // One byte of the chunk holding the first shard's bytes 4 MiB…8 MiB.
    const shard = join(model.root, 'seeder', 'versions', model.name, model.version, 'model-00000-of-00004.safetensors')
    const fh = await open(shard, 'r+')
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, 5 * MiB)
    b[0]! ^= 0xff
    await fh.write(b, 0, 1, 5 * MiB)
    await fh.close()

    const first = track(startFetch(seeder, join(model.root, 'host'), ['--timeout', '10m']))
    expect(await first.exited).toBe(4)
    expect(first.text.join('\n')).toMatch(new RegExp(`chunk \\d+ from seeder ${seeder.peerId}, the only source, failed verification`))
    const repaired = await seeder.waitFor(m => m.msg?.startsWith('a chunk in the cache failed verification'))

    const second = track(startFetch(seeder, join(model.root, 'host')))
    expect(await second.exited).toBe(0)
    expect(await treeDigests(join(model.root, 'host'))).toEqual(await treeDigests(model.source))
    const [after] = await seederVersions(seeder.admin)
    expect(after!.chunksRepaired).toBe(1)
    expect(after!.chunksReportedCorrupt).toBe(1)
    expect(after!.state).toBe('ready')
    // Exactly the rotten chunk crossed the line again.
    expect(after!.bytesPulled - v!.bytesPulled).toBe(4 * MiB)
    console.log(`rotten chunk ${repaired.chunk}: host failed fast with exit 4; seeder re-pulled ${after!.bytesPulled - v!.bytesPulled} bytes; rerun byte-identical`)
  })
})
