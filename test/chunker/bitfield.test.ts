import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../src/chunker/bitfield.ts'

describe('Bitfield', () => {
  it('sets, clears and counts, MSB first', () => {
    const b = new Bitfield(10)
    expect(b.set(0)).toBe(true)
    expect(b.set(0)).toBe(false)
    b.set(9)
    expect(b.bytes).toEqual(Uint8Array.from([0x80, 0x40]))
    expect(b.count).toBe(2)
    expect([...b.setIndexes()]).toEqual([0, 9])
    expect([...b.missingIndexes()].length).toBe(8)
    expect(b.clear(0)).toBe(true)
    expect(b.clear(0)).toBe(false)
    expect(b.count).toBe(1)
  })

  it('loads bytes and rejects spare bits or a wrong size', () => {
    expect(new Bitfield(10, Uint8Array.from([0xff, 0xc0])).complete).toBe(true)
    expect(() => new Bitfield(10, Uint8Array.from([0xff, 0xe0]))).toThrow(RangeError)
    expect(() => new Bitfield(10, Uint8Array.from([0xff]))).toThrow(RangeError)
  })

  it('bounds-checks indexes', () => {
    const b = new Bitfield(3)
    expect(() => b.has(3)).toThrow(RangeError)
    expect(() => b.set(-1)).toThrow(RangeError)
    expect(() => b.has(1.5)).toThrow(RangeError)
  })
})
