/**
 * How a pull splits into ranges of consecutive missing chunks, one per reader at a time. A range makes one
 * origin read per file it covers (the puller merges a file's spans), so one OPEN (one NameNode redirect,
 * one DataNode reader) carries several chunks of a large file: per-request cost on the HDFS side was
 * measured at ~30 ms of DataNode CPU, which 32 MiB reads paid 32 times per GiB. Ranges are capped so
 * every parallel reader gets a share, and so a failure costs little to resume.
 */
import type { ChunkLayout } from '../chunker/manifest.ts'

export interface ReadRange {
  /** First chunk index. */
  first: number
  /** Consecutive chunks from `first`. */
  count: number
}

export interface PlanOptions {
  /** Readers working at once; ranges are cut so each gets roughly an equal share. */
  parallel: number
  /** Longest single read in bytes (never less than one chunk). */
  rangeBytes: number
}

/** Groups `missing` (ascending chunk indexes) into ranges of consecutive chunks, in order. */
export function planReads (layout: ChunkLayout, missing: readonly number[], opts: PlanOptions): ReadRange[] {
  let missingBytes = 0
  for (const i of missing) missingBytes += layout.length[i]!
  const share = Math.ceil(missingBytes / Math.max(1, opts.parallel))
  const capBytes = Math.max(1, Math.min(opts.rangeBytes, share))
  const ranges: ReadRange[] = []
  let current: ReadRange | undefined
  let currentBytes = 0
  for (const i of missing) {
    const joins = current !== undefined && i === current.first + current.count && currentBytes + layout.length[i]! <= capBytes
    if (joins) {
      current!.count++
      currentBytes += layout.length[i]!
    } else {
      current = { first: i, count: 1 }
      currentBytes = layout.length[i]!
      ranges.push(current)
    }
  }
  return ranges
}
