/**
 * The deterministic test content MiniHdfs.java writes (`write PATH SIZE SEED`), regenerated on the Node
 * side so tests compare bytes read through WebHDFS without a second download. Same definition as the
 * Java file: 32-bit little-endian words, word i = fmix32((i · 0x9E3779B9) ^ fmix32(seed ^ 0x5BD1E995)).
 * Counter-based, so any range is computed directly (a ranged read is checked without generating its prefix).
 */
import { endianness } from 'node:os'

// The words are laid out through a Uint32Array, i.e. in host byte order.
if (endianness() !== 'LE') throw new Error('mini-hdfs-content assumes a little-endian host')

function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85EBCA6B)
  h ^= h >>> 13
  h = Math.imul(h, 0xC2B2AE35)
  h ^= h >>> 16
  return h >>> 0
}

/** Bytes [offset, offset + length) of the content stream for `seed` (an unsigned 32-bit integer). */
export function contentBytes (seed: number, offset: number, length: number): Uint8Array {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`invalid range ${offset}+${length}`)
  }
  const seedMix = fmix32((seed ^ 0x5BD1E995) >>> 0)
  const firstWord = Math.floor(offset / 4)
  const words = new Uint32Array(Math.ceil((offset + length) / 4) - firstWord)
  for (let j = 0; j < words.length; j++) {
    // Math.imul takes the index mod 2^32 as Java's int cast does: the stream repeats after 16 GiB.
    words[j] = fmix32(Math.imul(firstWord + j, 0x9E3779B9) ^ seedMix)
  }
  const skip = offset - firstWord * 4
  return new Uint8Array(words.buffer, skip, length)
}
