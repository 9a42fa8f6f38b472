/**
 * Chunk-size policy: few enough chunks that per-chunk overhead (a request, a hash, a bit, a HAVE) is
 * negligible, enough that a swarm has many pieces to trade and a lost chunk costs little.
 */
const MiB = 1024 * 1024

export const CHUNK_POLICY = {
  // 1 MiB, not 4: in the lab (N = 16, 64 MiB, 2026-11-30) 4 MiB chunks (16) left hosts waiting on each other:
  // 2.74× the bound and seeder egress 1.82 F; 1 MiB chunks 2.36× and 1.12 F (the simulator agrees: smaller
  // chunks pipeline better). Models over 2 GiB still get ≥ 2 MiB chunks from the target below.
  minChunkSize: 1 * MiB,
  maxChunkSize: 64 * MiB,
  /** Aim near the middle of the 500–4,000 chunk range, rounded to a power of two. */
  targetChunks: 2000
} as const

/** Power-of-two chunk size for a model of `totalSize` bytes, within [1 MiB, 64 MiB]. */
export function chooseChunkSize (totalSize: number): number {
  if (!Number.isSafeInteger(totalSize) || totalSize < 0) throw new RangeError(`invalid model size ${totalSize}`)
  const ideal = totalSize / CHUNK_POLICY.targetChunks
  let size = CHUNK_POLICY.minChunkSize
  while (size < ideal && size < CHUNK_POLICY.maxChunkSize) size *= 2
  return size
}
