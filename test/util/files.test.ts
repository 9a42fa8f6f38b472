// writeFullyAt continues short writes exactly where they stopped; writeAtomic on a full disk leaves the old
// file and no temporary file behind.
import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { mkdtemp, open, readdir, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NoProgressError, writeAtomic, writeFullyAt } from '../../src/util/files.ts'
import { canMount, mountTmpfs } from '../support/tmpfs.ts'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

describe('writeFullyAt', () => {
  it('writes every byte of any buffers at the position, whatever prefix each call manages (property)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ms-files-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const fh = await open(join(root, 'f'), 'w+')
    cleanups.push(() => fh.close())
    await fc.assert(fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 6 }), fc.nat(100), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
      async (buffers, position, steps) => {
        await fh.truncate(0)
        let call = 0
        // Each call writes at most the next step's byte count: a short write whenever that is less than asked.
        const write = async (h: FileHandle, bufs: Uint8Array[], pos: number): Promise<number> => {
          const room = steps[call++ % steps.length]!
          const cut: Uint8Array[] = []
          let left = room
          for (const b of bufs) { if (left <= 0) break; cut.push(b.subarray(0, left)); left -= b.length }
          return (await h.writev(cut, pos)).bytesWritten
        }
        await writeFullyAt(fh, buffers, position, write)
        const expected = Buffer.concat([Buffer.alloc(Buffer.concat(buffers).length > 0 ? position : 0), ...buffers])
        const got = await readFile(join(root, 'f'))
        expect(got.equals(expected)).toBe(true)
      }), { numRuns: 200 })
  })

  it('rejects a write that makes no progress instead of spinning', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ms-files-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const fh = await open(join(root, 'f'), 'w+')
    cleanups.push(() => fh.close())
    await expect(writeFullyAt(fh, [Buffer.from('abc')], 0, async () => 0)).rejects.toBeInstanceOf(NoProgressError)
  })
})

describe.skipIf(!canMount)('writeAtomic on a full disk', () => {
  it('rejects with ENOSPC, keeps the old file and leaves no temporary file', async () => {
    const fs = await mountTmpfs(1024 * 1024)
    cleanups.push(fs.destroy)
    const path = join(fs.dir, 'state.json')
    await writeFile(path, 'old')
    await fs.fill(4096)
    await expect(writeAtomic(path, Buffer.alloc(64 * 1024, 1))).rejects.toMatchObject({ code: 'ENOSPC' })
    expect(await readFile(path, 'utf8')).toBe('old')
    expect((await readdir(fs.dir)).sort()).toEqual(['filler', 'state.json'])
  })
})
