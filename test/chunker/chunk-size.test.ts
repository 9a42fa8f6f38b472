import { describe, expect, it } from 'vitest'
import { chooseChunkSize } from '../../src/chunker/chunk-size.ts'

const MiB = 2 ** 20
const GiB = 2 ** 30

describe('chunk-size policy', () => {
  it('stays within 128 KiB–64 MiB and powers of two', () => {
    for (const size of [0, 1, 100 * MiB, 2 * GiB, 10 * GiB, 100 * GiB, 2000 * GiB]) {
      const c = chooseChunkSize(size)
      expect(c).toBeGreaterThanOrEqual(128 * 1024)
      expect(c).toBeLessThanOrEqual(64 * MiB)
      expect(Math.log2(c) % 1).toBe(0)
    }
  })

  it('gives 500–4,000 chunks across the range the bounds allow', () => {
    for (let size = 0.25 * GiB; size <= 250 * GiB; size *= 1.37) {
      const n = Math.ceil(size / chooseChunkSize(Math.floor(size)))
      expect(n).toBeGreaterThanOrEqual(500)
      expect(n).toBeLessThanOrEqual(4000)
    }
  })

  it('rejects nonsense', () => {
    expect(() => chooseChunkSize(-1)).toThrow(RangeError)
  })
})
