// Bitfield decoding from arbitrary bytes and lengths (it decodes peers' wire messages and the store's
// bitfield file): either a RangeError, or a bitfield whose count, indexes and bytes agree.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { Bitfield } from '../../src/chunker/bitfield.ts'

const bitOf = (bytes: Uint8Array, i: number): boolean => (bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0

describe('Bitfield (property)', () => {
  it('decodes any bytes and length into a consistent bitfield or a RangeError', () => {
    const length = fc.oneof(fc.integer({ min: 0, max: 130 }), fc.integer({ min: -5, max: -1 }), fc.double(), fc.constant(2 ** 60))
    fc.assert(fc.property(length, fc.uint8Array({ maxLength: 20 }), (len, bytes) => {
      const copy = bytes.slice()
      let b: Bitfield
      try {
        b = new Bitfield(len, copy)
      } catch (err) {
        expect(err).toBeInstanceOf(RangeError)
        const valid = Number.isSafeInteger(len) && len >= 0 && bytes.length === Math.ceil(len / 8) &&
          [...Array(bytes.length * 8 - len).keys()].every(k => !bitOf(bytes, len + k))
        expect(valid).toBe(false)
        return
      }
      // === rather than Object.is (toBe): a length of -0 (fc.double() draws it) is the length 0.
      expect(b.length === len).toBe(true)
      const set = [...b.setIndexes()]
      const missing = [...b.missingIndexes()]
      expect(set.length).toBe(b.count)
      expect(set.length + missing.length === len).toBe(true)
      for (let i = 0; i < len; i++) expect(b.has(i)).toBe(bitOf(bytes, i))
      expect(b.complete).toBe(b.count === len)
      expect(() => b.has(len)).toThrow(RangeError)
      expect(Buffer.from(b.clone().bytes).equals(Buffer.from(bytes))).toBe(true)
    }), { numRuns: 500 })
  })

  it('keeps count equal to the bits set through any sequence of set and clear', () => {
    const lengthAndOps = fc.integer({ min: 1, max: 70 })
      .chain(len => fc.tuple(fc.constant(len), fc.array(fc.tuple(fc.boolean(), fc.nat(len - 1)), { maxLength: 60 })))
    fc.assert(fc.property(lengthAndOps, ([len, ops]) => {
      const b = new Bitfield(len)
      const model = new Set<number>()
      for (const [set, i] of ops) {
        expect(set ? b.set(i) : b.clear(i)).toBe(set ? !model.has(i) : model.has(i))
        if (set) model.add(i); else model.delete(i)
      }
      expect(b.count).toBe(model.size)
      expect([...b.setIndexes()]).toEqual([...model].sort((x, y) => x - y))
      // The bytes decode back to the same set.
      expect([...new Bitfield(len, b.bytes.slice()).setIndexes()]).toEqual([...b.setIndexes()])
    }), { numRuns: 300 })
  })
})
