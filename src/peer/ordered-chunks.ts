/**
 * A set of chunk indexes kept in the piece picker's order, so a pick walks the set from the front and
 * stops after the few chunks it needs instead of scanning every wanted chunk.
 *
 * The order is (key, rank): an integer key per chunk (the picker's ordering key, e.g. its copy count), then
 * a fixed rank, a permutation of 0..n−1 (the random tie-break). Chunks are bucketed by key; a bucket is a
 * bitset over rank positions, so walking it in rank order is walking its bits, and intersecting it with a
 * peer's chunks (kept in the same rank space) is a word-wise AND of 32 chunks at a time. A bucket also keeps
 * one summary bit per word that is not zero, so a sparse bucket is walked in O(its members + n ÷ 1024).
 * Keys are any safe integers, visited in ascending order; the picker puts whatever must sort first
 * (a priority class, say) in the high part of the key.
 */
export class OrderedChunks {
  readonly #byRank: Uint32Array
  readonly #rank: Uint32Array
  readonly #words: number
  /** Key of each member; NaN when absent. */
  readonly #keyOf: Float64Array
  readonly #buckets = new Map<number, Bucket>()
  /** Keys of the non-empty buckets, ascending. */
  readonly #keys: number[] = []

  /** `rank[c]` is chunk c's position in the tie-break order; the array is kept, not copied. */
  constructor (rank: Uint32Array) {
    const n = rank.length
    this.#rank = rank
    this.#byRank = new Uint32Array(n)
    for (let c = 0; c < n; c++) this.#byRank[rank[c]!] = c
    this.#words = wordsFor(n)
    this.#keyOf = new Float64Array(n).fill(NaN)
  }

  /** Keys of the non-empty buckets, ascending. Do not change the set while iterating this. */
  get keys (): readonly number[] { return this.#keys }

  /** Adds chunk c under `key`, or moves it there. */
  set (c: number, key: number): void {
    const old = this.#keyOf[c]!
    if (old === key) return
    if (!Number.isNaN(old)) this.delete(c)
    let b = this.#buckets.get(key)
    if (b === undefined) this.#buckets.set(key, b = new Bucket(this.#words))
    if (b.count === 0) insertSorted(this.#keys, key)
    b.add(this.#rank[c]!)
    this.#keyOf[c] = key
  }

  delete (c: number): void {
    const key = this.#keyOf[c]!
    if (Number.isNaN(key)) return
    const b = this.#buckets.get(key)!
    b.delete(this.#rank[c]!)
    if (b.count === 0) this.#keys.splice(this.#keys.indexOf(key), 1)
    this.#keyOf[c] = NaN
  }

  /**
   * Calls `visit` for the members under `key` whose rank bit is set in each mask given, in rank order,
   * until it returns false. Masks are rank-space bitsets of `wordsFor(n)` words.
   */
  visit (key: number, mask: Uint32Array | undefined, mask2: Uint32Array | undefined, visit: (c: number) => boolean): void {
    const b = this.#buckets.get(key)
    if (b === undefined) return
    const { words, summary } = b
    for (let s = 0; s < summary.length; s++) {
      let sx = summary[s]!
      while (sx !== 0) {
        const w = (s << 5) | lowBit(sx)
        sx &= sx - 1
        let x = words[w]! & (mask === undefined ? -1 : mask[w]!) & (mask2 === undefined ? -1 : mask2[w]!)
        while (x !== 0) {
          const r = (w << 5) | lowBit(x)
          x &= x - 1
          if (!visit(this.#byRank[r]!)) return
        }
      }
    }
  }

  /** Every member, in order. */
  forEach (visit: (c: number) => void): void {
    for (const key of this.#keys) this.visit(key, undefined, undefined, c => { visit(c); return true })
  }
}

/** Words of 32 bits for an n-bit rank-space bitset. */
export function wordsFor (n: number): number {
  return Math.ceil(n / 32)
}

export function hasBit (bits: Uint32Array, r: number): boolean {
  return (bits[r >>> 5]! & (1 << (r & 31))) !== 0
}

/** Sets or clears bit r; returns whether it changed. */
export function putBit (bits: Uint32Array, r: number, on: boolean): boolean {
  const m = 1 << (r & 31)
  const w = bits[r >>> 5]!
  if (((w & m) !== 0) === on) return false
  bits[r >>> 5] = on ? w | m : w & ~m
  return true
}

/** Index of the lowest set bit of a non-zero 32-bit word. */
function lowBit (x: number): number {
  return 31 - Math.clz32(x & -x)
}

class Bucket {
  readonly words: Uint32Array
  /** Bit w set ⇔ words[w] ≠ 0. */
  readonly summary: Uint32Array
  count = 0

  constructor (words: number) {
    this.words = new Uint32Array(words)
    this.summary = new Uint32Array(wordsFor(words))
  }

  add (r: number): void {
    putBit(this.words, r, true)
    putBit(this.summary, r >>> 5, true)
    this.count++
  }

  delete (r: number): void {
    putBit(this.words, r, false)
    if (this.words[r >>> 5] === 0) putBit(this.summary, r >>> 5, false)
    this.count--
  }
}

function insertSorted (list: number[], v: number): void {
  let at = list.length
  while (at > 0 && list[at - 1]! > v) at--
  list.splice(at, 0, v)
}
