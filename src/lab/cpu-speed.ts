/**
 * This box's speed on one core, as the lab reports it beside each run: SHA-256 throughput over 64 MiB in this
 * process, in GiB/s. The lab's hosts share this box's cores, so a slower box paces a run by CPU, and runs
 * compare only at similar speeds: on 2026-12-03 the same code took 40 % more CPU-s per host than two hours
 * before, with SHA-256 at 0.90–1.00 GiB/s against the 1.66 GiB/s of FACTS.md (docs/simulator.md, "The start").
 */
import { createHash } from 'node:crypto'

/** FACTS.md: SHA-256 on this machine type, one core, idle box (it has SHA instructions). */
export const USUAL_SHA256_GIBPS = 1.66

const SAMPLE_BYTES = 64 * 1024 * 1024

/** SHA-256 throughput of one core now, GiB/s (~40–70 ms of CPU). */
export function sha256GiBps (): number {
  const data = Buffer.alloc(SAMPLE_BYTES, 1)
  const start = process.hrtime.bigint()
  createHash('sha256').update(data).digest()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return SAMPLE_BYTES / 2 ** 30 / seconds
}
