/**
 * Which of several seeders pulls a version, with no coordinator: rendezvous (highest-random-weight)
 * hashing. Every seeder scores each seeder id against the version with SHA-256 and ranks them by score;
 * the first is the version's owner, the next takes over if it dies, and so on. Given the same ids each
 * seeder computes the same ranking, and adding or removing a seeder moves only the versions it wins or
 * held (Thaler and Ravishankar, "Using name-based mappings to increase hit rates", 1998).
 */
import { createHash } from 'node:crypto'
import { formatModelVersion, type ModelVersion } from '../model-version.ts'

/** The weight of seeder `id` for `ref`: the first 8 bytes of SHA-256(id NUL NAME@VERSION), big-endian. */
export function rendezvousScore (id: string, ref: ModelVersion): bigint {
  return createHash('sha256').update(`${id}\0${formatModelVersion(ref)}`).digest().readBigUInt64BE(0)
}

/**
 * `ids` (peer ids, duplicates dropped) ordered for `ref`: the owner first, then who takes over from it.
 * Ties (a 2^-64 event) go to the smaller id, so the order is total and the same everywhere.
 */
export function rankSeeders (ids: readonly string[], ref: ModelVersion): string[] {
  const scored = [...new Set(ids)].map(id => ({ id, score: rendezvousScore(id, ref) }))
  scored.sort((a, b) => a.score === b.score ? (a.id < b.id ? -1 : 1) : a.score > b.score ? -1 : 1)
  return scored.map(s => s.id)
}
