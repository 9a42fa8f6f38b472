import type { ReadSink } from '../../src/origins/origin.ts'

/**
 * A sink that collects `length` bytes into one buffer, handing out regions of `regionSize` bytes (an odd
 * size by default, so region ends fall mid-block of whatever fills them).
 */
export function collect (length: number, regionSize = 100_003): { sink: ReadSink, bytes: () => Buffer } {
  const out = Buffer.alloc(length)
  let got = 0
  return {
    sink: {
      region: () => out.subarray(got, Math.min(length, got + regionSize)),
      filled: n => { got += n }
    },
    bytes: () => out.subarray(0, got)
  }
}
