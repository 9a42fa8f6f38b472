import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { createHeader, type Manifest } from '../../src/chunker/manifest.ts'
import { silentLogger } from '../../src/log.ts'
import { LocalDirOrigin } from '../../src/origins/local-origin.ts'
import type { Origin, OriginListing, ReadSink } from '../../src/origins/origin.ts'
import type { ModelVersion } from '../../src/model-version.ts'
import { emptyPullStats, pullVersion } from '../../src/seeder/puller.ts'
import { DiskFullError } from '../../src/errors.ts'
import { errorOf } from '../support/errors.ts'
import { tempDir } from '../support/temp.ts'

const C = 4096
const ref = { name: 'm', version: 'v1' }

/** A real model directory: big.bin (9.5 chunks), small.bin (1 chunk), empty. */
async function model (): Promise<{ root: string, origin: LocalDirOrigin, manifest: Manifest, files: Record<string, Buffer> }> {
  const root = await tempDir('ms-puller-')
  const files = { 'big.bin': randomBytes(9.5 * C), 'small.bin': randomBytes(C), empty: Buffer.alloc(0) }
  const dir = join(root, 'origin', ref.name, ref.version)
  await mkdir(dir, { recursive: true })
  for (const [p, b] of Object.entries(files)) await writeFile(join(dir, p), b)
  const manifest = await manifestFromDirectory(dir, { ...ref, chunkSize: C })
  return { root, origin: new LocalDirOrigin(join(root, 'origin')), manifest, files }
}

/** Records each read and can fail reads after a given number of bytes (an origin dropping the connection). */
class RecordingOrigin implements Origin {
  readonly description = 'recording'
  reads: Array<{ path: string, offset: number, length: number }> = []
  /** Paths whose stamp was asked, in order. */
  stamped: string[] = []
  /** Waited before each region is filled: a slow line. */
  fillDelayMs = 0
  readonly inner: Origin
  readonly failAfter: number[]
  constructor (inner: Origin, failAfter: number[] = []) {
    this.inner = inner
    this.failAfter = failAfter
  }

  get bytesRead (): number { return this.inner.bytesRead }
  listReady = async (): Promise<ModelVersion[]> => this.inner.listReady()
  isReady = async (r: ModelVersion): Promise<boolean> => this.inner.isReady(r)
  listVersion = async (r: ModelVersion): Promise<OriginListing> => this.inner.listVersion(r)
  stampOf = async (r: ModelVersion, path: string): Promise<string> => {
    this.stamped.push(path)
    return await this.inner.stampOf(r, path)
  }

  async read (r: ModelVersion, path: string, offset: number, length: number, sink: ReadSink): Promise<void> {
    this.reads.push({ path, offset, length })
    const limit = this.failAfter.shift()
    const reset = (): Error => Object.assign(new Error('connection reset'), { code: 'ECONNRESET' })
    if (limit === 0) throw reset()
    let sent = 0
    await this.inner.read(r, path, offset, length, {
      region: () => limit === undefined ? sink.region() : sink.region().subarray(0, limit - sent),
      filled: async n => {
        if (this.fillDelayMs > 0) await new Promise(resolve => setTimeout(resolve, this.fillDelayMs))
        sent += n
        await sink.filled(n)
        if (sent === limit) throw reset()
      }
    })
  }
}

async function open (root: string, manifest: Manifest, name = 'out'): Promise<ChunkStore> {
  return ChunkStore.open({ dir: join(root, name), header: createHeader(manifest) })
}

describe('pullVersion', () => {
  it('pulls every chunk in multi-chunk reads, verifies nothing is read twice and the files come out whole', async () => {
    const { root, origin, manifest, files } = await model()
    const recording = new RecordingOrigin(origin)
    const store = await open(root, manifest)
    const seen: number[] = []
    const onChunk = (i: number, d: Uint8Array): void => {
      seen.push(i)
      expect(Buffer.from(d)).toEqual(Buffer.from(manifest.chunks[i]!))
    }
    const stats = await pullVersion(recording, ref, store, { parallel: 2, rangeBytes: 4 * C, log: silentLogger, onChunk })
    expect(seen.sort((a, b) => a - b)).toEqual([...Array(11).keys()])
    expect(stats).toEqual({ bytesRead: 10.5 * C, bytesRetried: 0, chunksPulled: 11, retries: 0 })
    expect(origin.bytesRead).toBe(10.5 * C)
    // big.bin: 10 chunks in ranges of ≤ 4 chunks; small.bin: one.
    expect(recording.reads.map(r => [r.path, r.offset / C, r.length / C])).toEqual([
      ['big.bin', 0, 4], ['big.bin', 4, 4], ['big.bin', 8, 1.5], ['small.bin', 0, 1]
    ])
    await store.finalize()
    await store.close()
    for (const [p, b] of Object.entries(files)) expect(await readFile(join(root, 'out', p))).toEqual(b)
  })

  it('pulls chunks of packed small files with one read per file, and retries a failed chunk from its first file', async () => {
    const root = await tempDir('ms-puller-')
    const dir = join(root, 'origin', ref.name, ref.version)
    await mkdir(dir, { recursive: true })
    const files = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, randomBytes(1000)]))
    for (const [p, b] of Object.entries(files)) await writeFile(join(dir, p), b)
    const manifest = await manifestFromDirectory(dir, { ...ref, chunkSize: C })
    expect(manifest.chunks.length).toBe(3) // 4 + 4 + 2 files of 1,000 bytes in chunks of 4,096
    // The first read of p5 fails half-way: chunk 1 (p4–p7) is read again from p4.
    const recording = new RecordingOrigin(new LocalDirOrigin(join(root, 'origin')), [...Array<number>(5).fill(Infinity), 500])
    const store = await open(root, manifest)
    const stats = await pullVersion(recording, ref, store, { parallel: 1, retryBaseMs: 1, log: silentLogger, onChunk: () => {} })
    expect(recording.reads.map(r => r.path)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'])
    expect(stats).toEqual({ bytesRead: 11500, bytesRetried: 1500, chunksPulled: 3, retries: 1 })
    await store.finalize()
    await store.close()
    for (const [p, b] of Object.entries(files)) expect(await readFile(join(root, 'out', p))).toEqual(b)
  })

  it('reads only the chunks a resumed store lacks', async () => {
    const { root, origin, manifest, files } = await model()
    const first = await open(root, manifest)
    await expect(pullVersion(new RecordingOrigin(origin, [2.5 * C]), ref, first, { parallel: 1, attempts: 1, log: silentLogger, onChunk: () => {} }))
      .rejects.toThrow('connection reset')
    expect(first.have.count).toBe(2)
    await first.close()
    const again = await open(root, manifest)
    const recording = new RecordingOrigin(origin)
    const stats = await pullVersion(recording, ref, again, { parallel: 1, log: silentLogger, onChunk: () => {} })
    expect(stats.bytesRead).toBe(8.5 * C)
    expect(recording.reads.map(r => [r.path, r.offset / C, r.length / C])).toEqual([['big.bin', 2, 7.5], ['small.bin', 0, 1]])
    await again.finalize()
    await again.close()
    expect(await readFile(join(root, 'out', 'big.bin'))).toEqual(files['big.bin'])
  })

  it('resumes a failed read at the chunk it failed in, counting only that chunk\'s bytes as retried', async () => {
    const { root, origin, manifest, files } = await model()
    const recording = new RecordingOrigin(origin, [5.25 * C, 0.5 * C])
    const store = await open(root, manifest)
    const stats = await pullVersion(recording, ref, store, { parallel: 1, retryBaseMs: 1, log: silentLogger, onChunk: () => {} })
    expect(stats.retries).toBe(2)
    expect(stats.bytesRetried).toBe(0.75 * C)
    expect(stats.bytesRead - stats.bytesRetried).toBe(10.5 * C)
    expect(recording.reads.map(r => [r.offset / C, r.length / C])).toEqual([[0, 9.5], [5, 4.5], [5, 4.5], [0, 1]])
    await store.finalize()
    await store.close()
    expect(await readFile(join(root, 'out', 'big.bin'))).toEqual(files['big.bin'])
  })

  it('gives up after `attempts` failures of the same chunk, keeping the chunks before it', async () => {
    const { root, origin, manifest } = await model()
    const store = await open(root, manifest)
    const recording = new RecordingOrigin(origin, [1.5 * C, 0, 0])
    await expect(pullVersion(recording, ref, store, { parallel: 1, attempts: 3, retryBaseMs: 1, log: silentLogger, onChunk: () => {} }))
      .rejects.toThrow('connection reset')
    expect([...store.have.setIndexes()]).toEqual([0])
    expect(recording.reads).toHaveLength(3)
    await store.close()
  })

  it('fails at once, without retrying, when a chunk differs from the hash recorded for it', async () => {
    const { root, origin, manifest } = await model()
    const store = await open(root, manifest)
    await store.recordHash(3, new Uint8Array(32).fill(7))
    const recording = new RecordingOrigin(origin)
    const err = await errorOf(pullVersion(recording, ref, store, { parallel: 1, log: silentLogger, onChunk: () => {} }))
    expect(err).toMatchObject({ code: 'MS_ORIGIN_CHANGED' })
    expect(recording.reads).toHaveLength(1)
    expect(store.have.has(3)).toBe(false)
    await store.close()
  })

  it('checks each file\'s stamp at the origin once for a batch of whole chunks, not once per chunk', async () => {
    const { root, origin, manifest, files } = await model()
    const recording = new RecordingOrigin(origin)
    const store = await open(root, manifest)
    const { stamps } = await origin.listVersion(ref)
    const seen: number[] = []
    await pullVersion(recording, ref, store, { parallel: 1, stamps, log: silentLogger, onChunk: i => seen.push(i) })
    // 11 chunks of two files, 42 KiB in all: one batch, one NameNode call per file (per chunk: 11).
    expect(recording.stamped).toEqual(['big.bin', 'small.bin'])
    expect(seen).toEqual([...Array(11).keys()])
    await store.finalize()
    await store.close()
    for (const [p, b] of Object.entries(files)) expect(await readFile(join(root, 'out', p))).toEqual(b)
  })

  it('stores none of a batch whose file changed at the origin, and fails as re-published', async () => {
    const { root, origin, manifest } = await model()
    const store = await open(root, manifest)
    const { stamps } = await origin.listVersion(ref)
    const err = await errorOf(pullVersion(origin, ref, store, { parallel: 1, stamps: { ...stamps, 'big.bin': 'another' }, log: silentLogger, onChunk: () => {} }))
    expect(err).toMatchObject({ code: 'MS_ORIGIN_CHANGED', republished: true })
    expect(store.have.count).toBe(0)
    await store.close()
  })

  it('a read that fails after its file changed at the origin ends the pull as re-published, without reading again', async () => {
    const { root, origin, manifest } = await model()
    const recording = new RecordingOrigin(origin, [2.5 * C])
    const store = await open(root, manifest)
    const { stamps } = await origin.listVersion(ref)
    const stats = emptyPullStats()
    const err = await errorOf(pullVersion(recording, ref, store, { parallel: 1, retryBaseMs: 1, stamps: { ...stamps, 'big.bin': 'another' }, stats, log: silentLogger, onChunk: () => {} }))
    expect(err).toMatchObject({ code: 'MS_ORIGIN_CHANGED', republished: true })
    expect(recording.reads).toHaveLength(1)
    expect(stats.retries).toBe(0)
    expect(store.have.count).toBe(0)
    await store.close()
  })

  it('on a slow line stores each chunk as it comes instead of holding it for the next', async () => {
    const { root, origin, manifest } = await model()
    const recording = new RecordingOrigin(origin)
    recording.fillDelayMs = 600
    const store = await open(root, manifest)
    const { stamps } = await origin.listVersion(ref)
    await pullVersion(recording, ref, store, { parallel: 1, stamps, only: [0, 1, 2], log: silentLogger, onChunk: () => {} })
    expect(recording.stamped).toEqual(['big.bin', 'big.bin', 'big.bin'])
    await store.close()
  })

  it('stops every other reader at the first failure, and settles only once they have stopped', async () => {
    const { root, origin, manifest } = await model()
    const reads: number[] = []
    let failed = false
    // The first read fails for good at once (the store's disk is full, say); the others are slow.
    const failing: Origin = Object.assign(Object.create(origin) as Origin, {
      read: async (r: ModelVersion, path: string, offset: number, length: number, sink: ReadSink, signal?: AbortSignal): Promise<void> => {
        reads.push(offset)
        if (!failed) {
          failed = true
          throw new DiskFullError('no space left on device')
        }
        await new Promise(resolve => setTimeout(resolve, 50))
        signal?.throwIfAborted()
        await (origin as Origin).read(r, path, offset, length, sink, signal)
      }
    })
    const store = await open(root, manifest)
    const err = await errorOf(pullVersion(failing, ref, store, { parallel: 2, rangeBytes: C, log: silentLogger, onChunk: () => {} }))
    expect(err).toBeInstanceOf(DiskFullError)
    const readsAtFailure = reads.length
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(reads).toHaveLength(readsAtFailure)
    // The failed read and the one in flight beside it: of 11 chunks, the rest were never read.
    expect(readsAtFailure).toBe(2)
    await store.close()
  })

  it('counts the bytes a reader stopped mid-chunk had read as retried: what was read minus what was retried is one copy of what was stored', async () => {
    const { root, origin, manifest } = await model()
    let calls = 0
    // The first reader gets half a chunk and then waits; the second fails for good, which stops the first.
    const failing: Origin = Object.assign(Object.create(origin) as Origin, {
      read: async (_r: ModelVersion, _path: string, _offset: number, _length: number, sink: ReadSink, signal?: AbortSignal): Promise<void> => {
        if (calls++ === 0) {
          const region = sink.region()
          await sink.filled(Math.min(region.length, C / 2))
          await new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error)))
        }
        await new Promise(resolve => setTimeout(resolve, 20))
        throw new DiskFullError('no space left on device')
      }
    })
    const store = await open(root, manifest)
    const stats = emptyPullStats()
    const err = await errorOf(pullVersion(failing, ref, store, { parallel: 2, rangeBytes: C, log: silentLogger, onChunk: () => {}, stats }))
    expect(err).toBeInstanceOf(DiskFullError)
    expect(stats.bytesRead).toBe(C / 2)
    expect(stats.bytesRead - stats.bytesRetried).toBe(store.have.count * C)
    await store.close()
  })
})
