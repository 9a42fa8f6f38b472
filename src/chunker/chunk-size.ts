/**
 * Chunk-size policy: few enough chunks that per-chunk overhead (a request, a hash, a bit, a HAVE) is
 * negligible, enough that a swarm has many pieces to trade and a lost chunk costs little.
 */
const MiB = 1024 * 1024

export const CHUNK_POLICY = {
  // 128 KiB: a host forwards a chunk only once it holds all of it, so each hop costs a chunk's transfer time,
  // and a model needs many more chunks than there are uploads in flight (8 per node) to keep every uplink
  // busy. Lab, N = 16, 64 MiB, at a quarter of the default rates (u 6.25 Mbit/s; CPU no limit), one run each,
  // BitTorrent (1 MiB pieces, 16 KiB blocks from several peers) in the same run: 1 MiB chunks 1.72–2.21×
  // the bound against its 1.31–1.41×, 256 KiB 1.43–1.44× against 1.31×, 128 KiB 1.30–1.34× against 1.34×,
  // 64 KiB 1.32–1.41× against 1.32× (no better, and 10 % more CPU than 128 KiB).
  // At the default rates, where this 2-core box is the limit, 128 KiB costs ~15 % more CPU per host than
  // 256 KiB (4.0–4.9 vs 3.6–4.2 CPU-s). The simulator agrees (docs/simulator.md). Only models under 250 MiB
  // get the floor; from 1 GiB the target below gives ≥ 1 MiB.
  minChunkSize: 128 * 1024,
  maxChunkSize: 64 * MiB,
  /** Aim near the middle of the 500–4,000 chunk range, rounded to a power of two. */
  targetChunks: 2000
} as const

/** Power-of-two chunk size for a model of `totalSize` bytes, within [128 KiB, 64 MiB]. */
export function chooseChunkSize (totalSize: number): number {
  if (!Number.isSafeInteger(totalSize) || totalSize < 0) throw new RangeError(`invalid model size ${totalSize}`)
  const ideal = totalSize / CHUNK_POLICY.targetChunks
  let size = CHUNK_POLICY.minChunkSize
  while (size < ideal && size < CHUNK_POLICY.maxChunkSize) size *= 2
  return size
}
