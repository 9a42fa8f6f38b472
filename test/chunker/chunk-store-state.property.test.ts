// ChunkStore.open over damaged state files (header.json, hashes, bitfield, the clean marker: deleted, cut,
// replaced by garbage, bit-flipped, extended): the result is a typed error or a store whose every claimed chunk
// holds the right bytes — never an untyped crash, a hang, a file left outside the store's names, or a chunk
// held with wrong bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { cp, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import { chunkLayout, spansOf, type Manifest } from '../../src/chunker/manifest.ts'
import { ModelswarmError } from '../../src/errors.ts'
import { readSourceChunk } from './source-chunk.ts'

const STATE_FILES = ['header.json', 'hashes', 'bitfield', 'clean'] as const
const STATE_NAMES = new Set([...STATE_FILES, 'lock'])

type Damage =
  | { kind: 'keep' }
  | { kind: 'delete' }
  | { kind: 'cut', at: number }
  | { kind: 'garbage', bytes: Uint8Array }
  | { kind: 'flip', at: number, mask: number }
  | { kind: 'append', bytes: Uint8Array }

const damage: fc.Arbitrary<Damage> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'keep' as const }), weight: 4 },
  { arbitrary: fc.constant({ kind: 'delete' as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('garbage' as const), bytes: fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.constant(new Uint8Array(2).fill(0xff))) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }), weight: 1 }
)

async function applyDamage (path: string, d: Damage): Promise<void> {
  const before = await readFile(path).catch(() => undefined)
  switch (d.kind) {
    case 'keep': return
    case 'delete': await rm(path, { force: true }); return
    case 'cut': if (before !== undefined) await writeFile(path, before.subarray(0, d.at % (before.length + 1))); return
    case 'garbage': await writeFile(path, d.bytes); return
    case 'flip':
      if (before !== undefined && before.length > 0) {
        before[d.at % before.length]! ^= d.mask
        await writeFile(path, before)
      }
      return
    case 'append': await writeFile(path, Buffer.concat([before ?? Buffer.alloc(0), d.bytes]))
  }
}

let root: string
let src: string
let manifest: Manifest
let run = 0

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ms-store-prop-'))
  src = join(root, 'src')
  await mkdir(join(src, 'd'), { recursive: true })
  await writeFile(join(src, 'a.bin'), randomBytes(1024 * 10 + 500))
  await writeFile(join(src, 'd', 'b.bin'), randomBytes(1024 * 2))
  manifest = await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: 1024 })
  // The template: chunks 0–3, 7 and 12 held after a clean close; chunk 5 has wrong bytes on disk, the rest zeros.
  const store = await ChunkStore.open({ dir: join(root, 'template', 'out'), header: manifest, reserveBytes: 0 })
  for (let i = 0; i < manifest.chunks.length; i++) await store.recordHash(i, manifest.chunks[i]!)
  for (const i of [0, 1, 2, 3, 7, 12]) await store.writeChunk(i, await readSourceChunk(src, manifest, i))
  await store.close()
  await stat(join(root, 'template', 'out.modelswarm', 'clean'))
  const fh = await open(join(root, 'template', 'out.partial', 'a.bin'), 'r+')
  await fh.write(randomBytes(1024), 0, 1024, spansOf(chunkLayout(manifest), 5)[0]!.offset)
  await fh.close()
})

afterAll(async () => { await rm(root, { recursive: true, force: true }) })

describe('ChunkStore.open over damaged state files (property)', () => {
  it('gives a typed error or a store whose claimed chunks all hold the right bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.tuple(damage, damage, damage, damage), fc.boolean(), async (damages, cleanStop) => {
      const dir = join(root, `run-${run++}`)
      await cp(join(root, 'template'), dir, { recursive: true })
      const stateDir = join(dir, 'out.modelswarm')
      // Half the runs start from an unclean stop (no marker at all) before the damage.
      if (!cleanStop) await rm(join(stateDir, 'clean'))
      for (const [i, name] of STATE_FILES.entries()) await applyDamage(join(stateDir, name), damages[i]!)
      try {
        let store: ChunkStore
        try {
          store = await ChunkStore.open({ dir: join(dir, 'out'), header: manifest, reserveBytes: 0 })
        } catch (err) {
          expect(err, String(err)).toBeInstanceOf(ModelswarmError)
          return
        }
        try {
          for (const i of store.have.setIndexes()) {
            expect((await store.readChunk(i)).equals(await readSourceChunk(src, manifest, i)), `chunk ${i} claimed with wrong bytes`).toBe(true)
          }
          expect(store.have.count).toBeLessThanOrEqual(6)
        } finally {
          await store.close()
        }
        // Nothing written beside the store, and no temporary file left in it.
        expect((await readdir(dir)).sort()).toEqual(['out.modelswarm', 'out.partial'])
        for (const name of await readdir(stateDir)) expect(STATE_NAMES.has(name as never), name).toBe(true)
        // A second open of what this one left is trusted as is: its close was clean.
        const again = await ChunkStore.open({ dir: join(dir, 'out'), header: manifest, reserveBytes: 0 })
        expect(again.resume.discarded).toBe(0)
        await again.close()
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }), { numRuns: 150, timeout: 5000 })
    expect((await readdir(root)).sort()).toEqual(['src', 'template'])
    await expect(stat(join(root, 'template', 'out'))).rejects.toThrow(/ENOENT/)
  })
})
