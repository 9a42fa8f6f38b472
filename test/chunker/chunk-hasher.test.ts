import { describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, writeFile, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { hashFileRanges, listModelFiles, manifestFromDirectory, readFileRange } from '../../src/chunker/chunk-hasher.ts'
import { chunkLayout } from '../../src/chunker/manifest.ts'
import { CHUNK_POLICY } from '../../src/chunker/chunk-size.ts'
import { InvalidInputError, ShortReadError } from '../../src/errors.ts'
import { readSourceChunk } from './source-chunk.ts'
import { tempDir } from '../support/temp.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('hashFileRanges', () => {
  it('hashes ranges of files one after another, copying them when asked', async () => {
    const dir = await tempDir('ms-hasher-')
    const a = randomBytes(3 * 1024 * 1024 + 17)
    const b = randomBytes(10)
    await writeFile(join(dir, 'a'), a)
    await writeFile(join(dir, 'b'), b)
    const ranges = [{ path: join(dir, 'a'), start: 5, end: a.length }, { path: join(dir, 'b'), start: 0, end: 10 }, { path: join(dir, 'a'), start: 0, end: 0 }]
    const into = Buffer.alloc(a.length - 5 + 10)
    const digest = await hashFileRanges(ranges, into)
    const expected = Buffer.concat([a.subarray(5), b])
    expect(digest.toString('hex')).toBe(sha(expected))
    expect(into.equals(expected)).toBe(true)
  })

  it('throws ShortReadError for a file shorter than its range', async () => {
    const dir = await tempDir('ms-hasher-')
    await writeFile(join(dir, 'a'), randomBytes(100))
    await expect(hashFileRanges([{ path: join(dir, 'a'), start: 0, end: 101 }])).rejects.toThrow(ShortReadError)
  })
})

describe('directories', () => {
  async function model (): Promise<{ dir: string, files: Record<string, Buffer> }> {
    const dir = await tempDir('ms-hasher-')
    const files: Record<string, Buffer> = {
      'config.json': Buffer.from('{"a":1}'),
      'empty': Buffer.alloc(0),
      'shards/00.bin': randomBytes(4096 * 3),
      'shards/01.bin': randomBytes(4096 * 2 + 5),
      'tokenizer/vocab.txt': randomBytes(1)
    }
    for (const [p, b] of Object.entries(files)) {
      await mkdir(join(dir, p, '..'), { recursive: true })
      await writeFile(join(dir, p), b)
    }
    return { dir, files }
  }

  it('lists files sorted into a manifest whose hashes match each chunk', async () => {
    const { dir, files } = await model()
    const m = await manifestFromDirectory(dir, { name: 'm', version: 'v1', chunkSize: 4096 })
    expect(m.files.map(f => f.path)).toEqual(Object.keys(files).sort())
    const l = chunkLayout(m)
    expect(l.count).toBe(1 + 3 + 3 + 1)
    for (let i = 0; i < l.count; i++) expect(Buffer.from(m.chunks[i]!).toString('hex')).toBe(sha(await readSourceChunk(dir, m, i)))
  })

  it('chooses a policy chunk size when none is given', async () => {
    const { dir } = await model()
    const m = await manifestFromDirectory(dir, { name: 'm', version: 'v1' })
    // A small model gets the policy's floor.
    expect(m.chunkSize).toBe(CHUNK_POLICY.minChunkSize)
  })

  it('refuses symlinks', async () => {
    const { dir } = await model()
    await symlink('/etc/passwd', join(dir, 'link'))
    await expect(listModelFiles(dir)).rejects.toThrow(InvalidInputError)
  })

  it('reports a file that shrinks while it is read', async () => {
    const { dir } = await model()
    const it = readFileRange(join(dir, 'config.json'), 0, 100)
    await expect((async () => { for await (const _ of it) { /* drain */ } })()).rejects.toThrow(/shrank/)
  })
})
