/**
 * HdfsOrigin against a real HDFS: readiness by marker with cheap polling, file listings, checksums for
 * dedup, ranged reads, and the errors a changed or missing path gives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NotFoundError } from '../../../src/errors.ts'
import { HdfsOrigin } from '../../../src/origins/hdfs/hdfs-origin.ts'
import { OriginChangedError } from '../../../src/errors.ts'
import { WebHdfsClient } from '../../../src/origins/hdfs/webhdfs-client.ts'
import { startMiniHdfs, type MiniHdfs } from '../../hdfs/mini-hdfs.ts'
import { contentBytes } from '../../hdfs/mini-hdfs-content.ts'
import { collect } from '../../support/read-sink.ts'

const MiB = 1024 * 1024

describe('HdfsOrigin', () => {
  let hdfs: MiniHdfs
  let client: WebHdfsClient
  const calls: string[] = []
  beforeAll(async () => {
    hdfs = await startMiniHdfs()
    client = new WebHdfsClient({ namenodes: hdfs.namenodes, user: 'alice' })
    // Records which metadata calls the origin makes, to check that polling stays cheap.
    for (const method of ['listStatus', 'getFileStatus'] as const) {
      const original = client[method].bind(client)
      client[method] = (async (path: string, options?: { signal?: AbortSignal }) => { calls.push(`${method} ${path}`); return original(path, options) }) as never
    }
    await hdfs.writeFile('/r1/llm/v1/weights.bin', 3 * MiB + 7, 1, MiB)
    await hdfs.writeFile('/r1/llm/v1/sub/dir/vocab.txt', 1000, 2, MiB)
    await hdfs.command('chmod /r1/llm/v1/weights.bin 600')
    await hdfs.command('touch /r1/llm/v1/_SUCCESS')
    await hdfs.writeFile('/r1/llm/v2/weights.bin', 1000, 3, MiB)
    await hdfs.writeFile('/r2/llm/v9/weights.bin', 1000, 4, MiB)
    await hdfs.command('touch /r2/llm/v9/_SUCCESS')
    await hdfs.writeFile('/r2/other/a/f', 1000, 2, MiB)
    await hdfs.command('touch /r2/other/a/_SUCCESS')
  })
  afterAll(async () => {
    client?.close()
    await hdfs?.stop()
  })

  it('lists ready versions under every root, listing a model or probing a marker only when its directory changed', async () => {
    const origin = new HdfsOrigin({ client, roots: ['/r1', '/r2/'] })
    // llm is taken from /r1, the first root that has it; /r2/llm is shadowed.
    expect(await origin.listReady()).toEqual([{ name: 'llm', version: 'v1' }, { name: 'other', version: 'a' }])
    calls.length = 0
    expect(await origin.listReady()).toEqual([{ name: 'llm', version: 'v1' }, { name: 'other', version: 'a' }])
    // /r1/llm has a version not ready yet (v2), so it is listed again; /r2/other is unchanged and all ready.
    expect(calls).toEqual(['listStatus /r1', 'listStatus /r1/llm', 'listStatus /r2'])
    await hdfs.command('touch /r1/llm/v2/_SUCCESS')
    calls.length = 0
    expect(await origin.listReady()).toContainEqual({ name: 'llm', version: 'v2' })
    expect(calls).toContain('getFileStatus /r1/llm/v2/_SUCCESS')
    calls.length = 0
    expect(await origin.listReady()).toHaveLength(3)
    expect(calls).toEqual(['listStatus /r1', 'listStatus /r2'])
    // A new version directory moves its model directory's mtime, so the model is listed again.
    await hdfs.writeFile('/r2/other/b/f', 1000, 2, MiB)
    await hdfs.command('touch /r2/other/b/_SUCCESS')
    calls.length = 0
    expect(await origin.listReady()).toContainEqual({ name: 'other', version: 'b' })
    expect(calls).toEqual(['listStatus /r1', 'listStatus /r2', 'listStatus /r2/other', 'getFileStatus /r2/other/b/_SUCCESS'])
    expect(await origin.isReady({ name: 'llm', version: 'v2' })).toBe(true)
    expect(await origin.isReady({ name: 'llm', version: 'v3' })).toBe(false)
  })

  it('lists a version\'s files recursively with sizes and modes, marker excluded, and reads exact ranges', async () => {
    const origin = new HdfsOrigin({ client: new WebHdfsClient({ namenodes: hdfs.namenodes, user: 'root' }), roots: ['/r1'], marker: '_SUCCESS' })
    const ref = { name: 'llm', version: 'v1' }
    const listing = await origin.listVersion(ref)
    expect(listing.files).toEqual([
      { path: 'sub/dir/vocab.txt', size: 1000, mode: 0o644 },
      { path: 'weights.bin', size: 3 * MiB + 7, mode: 0o600 }
    ])
    expect(listing.dirs.map(d => d.path)).toEqual(['sub', 'sub/dir'])
    // A stamp names one file's bytes: the listing's and a later look agree while nothing changes.
    expect(await origin.stampOf(ref, 'weights.bin')).toBe(listing.stamps['weights.bin'])
    const got = collect(2 * MiB)
    await origin.read(ref, 'weights.bin', MiB - 3, 2 * MiB, got.sink)
    expect(got.bytes().equals(contentBytes(1, MiB - 3, 2 * MiB))).toBe(true)
    expect(origin.bytesRead).toBe(2 * MiB)
  })

  it('gives equal checksums to equal files only', async () => {
    const origin = new HdfsOrigin({ client, roots: ['/r1', '/r2'] })
    await origin.listReady()
    const vocab = await origin.checksum({ name: 'llm', version: 'v1' }, 'sub/dir/vocab.txt')
    expect(vocab).toMatch(/^MD5-of-\d+MD5-of-\d+CRC32C:[0-9a-f]+$/)
    expect(await origin.checksum({ name: 'other', version: 'a' }, 'f')).toBe(vocab)
    expect(await origin.checksum({ name: 'llm', version: 'v2' }, 'weights.bin')).not.toBe(vocab)
  })

  it('a missing root is a NotFoundError naming it; a file that shrank is an OriginChangedError, not a retry', async () => {
    await expect(new HdfsOrigin({ client, roots: ['/nope'] }).listReady()).rejects.toThrow(NotFoundError)
    await expect(new HdfsOrigin({ client, roots: ['/nope'] }).listReady()).rejects.toThrow(/\/nope does not exist/)
    await hdfs.writeFile('/r3/m/v1/w.bin', 4 * MiB, 5, MiB)
    const origin = new HdfsOrigin({ client, roots: ['/r3'] })
    await hdfs.command('truncate /r3/m/v1/w.bin 1048576')
    await expect(origin.read({ name: 'm', version: 'v1' }, 'w.bin', 0, 4 * MiB, collect(4 * MiB).sink)).rejects.toThrow(OriginChangedError)
    await expect(origin.read({ name: 'm', version: 'v1' }, 'w.bin', 2 * MiB, MiB, collect(MiB).sink)).rejects.toThrow(/shrank to 1048576 bytes/)
  })
})
