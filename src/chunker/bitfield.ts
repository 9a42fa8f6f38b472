/** A fixed-length set of chunk indexes, stored MSB-first like BitTorrent's bitfield so it can go on the wire as is. */
export class Bitfield {
  readonly length: number
  readonly bytes: Uint8Array
  #count = 0

  constructor (length: number, bytes?: Uint8Array) {
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid bitfield length ${length}`)
    const size = Math.ceil(length / 8)
    if (bytes !== undefined && bytes.length !== size) throw new RangeError(`bitfield of ${length} bits needs ${size} bytes, got ${bytes.length}`)
    this.length = length
    this.bytes = bytes ?? new Uint8Array(size)
    if (bytes !== undefined) {
      // Spare bits past `length` must be zero, or `count` and equality would lie.
      const spare = size * 8 - length
      if (spare > 0 && (this.bytes[size - 1]! & ((1 << spare) - 1)) !== 0) throw new RangeError('bitfield has bits set past its length')
      for (const b of this.bytes) this.#count += popcount8(b)
    }
  }

  get count (): number { return this.#count }
  get complete (): boolean { return this.#count === this.length }

  has (index: number): boolean {
    this.#check(index)
    return (this.bytes[index >> 3]! & (0x80 >> (index & 7))) !== 0
  }

  /** Sets the bit; returns false when it was already set. */
  set (index: number): boolean {
    if (this.has(index)) return false
    this.bytes[index >> 3]! |= 0x80 >> (index & 7)
    this.#count++
    return true
  }

  /** Clears the bit; returns false when it was already clear. */
  clear (index: number): boolean {
    if (!this.has(index)) return false
    this.bytes[index >> 3]! &= ~(0x80 >> (index & 7))
    this.#count--
    return true
  }

  * setIndexes (): Generator<number> {
    for (let i = 0; i < this.length; i++) if (this.has(i)) yield i
  }

  * missingIndexes (): Generator<number> {
    for (let i = 0; i < this.length; i++) if (!this.has(i)) yield i
  }

  clone (): Bitfield { return new Bitfield(this.length, this.bytes.slice()) }

  #check (index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) throw new RangeError(`chunk index ${index} out of range 0..${this.length - 1}`)
  }
}

function popcount8 (b: number): number {
  let n = 0
  for (; b !== 0; b &= b - 1) n++
  return n
}
