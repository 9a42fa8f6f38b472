import { describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, writeFile, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { hashChunks, listModelFiles, manifestFromDirectory, readFileRange } from '../../src/chunker/chunk-hasher.ts'
import { chunkLayout } from '../../src/chunker/manifest.ts'
import { InvalidInputError } from '../../src/errors.ts'
import { tempDir } from '../support/temp.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function * blocks (data: Buffer, sizes: number[]): AsyncGenerator<Uint8Array> {
  let pos = 0
  for (let i = 0; pos < data.length; i++) {
    const n = sizes[i % sizes.length]!
    yield data.subarray(pos, pos + n)
    pos += n
  }
}

describe('hashChunks', () => {
  it('cuts a stream at chunk boundaries whatever the block sizes', async () => {
    const data = randomBytes(10_000)
    for (const sizes of [[1], [7, 1500], [4096], [10_000], [999, 1, 3000]]) {
      const out = []
      for await (const c of hashChunks(blocks(data, sizes), 4096)) out.push(c)
      expect(out.map(c => [c.index, c.offset, c.length])).toEqual([[0, 0, 4096], [1, 4096, 4096], [2, 8192, 1808]])
      out.forEach(c => expect(Buffer.from(c.digest).toString('hex')).toBe(sha(data.subarray(c.offset, c.offset + c.length))))
    }
  })

  it('yields nothing for an empty stream and starts at the given index', async () => {
    const none = []
    for await (const c of hashChunks(blocks(Buffer.alloc(0), [1]), 1024)) none.push(c)
    expect(none).toEqual([])
    const one = []
    for await (const c of hashChunks(blocks(Buffer.alloc(10), [10]), 1024, 7)) one.push(c)
    expect(one[0]!.index).toBe(7)
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
    for (let i = 0; i < l.count; i++) {
      const f = files[m.files[l.file[i]!]!.path]!
      expect(Buffer.from(m.chunks[i]!).toString('hex')).toBe(sha(f.subarray(l.offset[i]!, l.offset[i]! + l.length[i]!)))
    }
  })

  it('chooses a policy chunk size when none is given', async () => {
    const { dir } = await model()
    const m = await manifestFromDirectory(dir, { name: 'm', version: 'v1' })
    expect(m.chunkSize).toBe(4 * 1024 * 1024)
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
