/**
 * The seeder's cache policy as pure functions over plain values: which versions to pull unasked, and
 * which cached versions to delete. The seeder gathers the facts (sizes, last use, pins, who is pulling
 * or being downloaded from) and carries the decision out; nothing here touches disk or clock.
 */
import type { ModelVersion } from '../model-version.ts'

export interface CachedVersion extends ModelVersion {
  /** Bytes the version takes in the cache. */
  bytes: number
  /** Last time (ms) a host resolved, downloaded or reported on it; LRU order. */
  lastUsedAt: number
  pinned: boolean
  /** Being pulled, or used by hosts within the in-use window: never evicted. */
  busy: boolean
}

export interface RetentionLimits {
  /** Cache size limit in bytes; undefined = no limit. */
  capacity?: number
  /** Versions kept per model, newest first; undefined = all. */
  keepVersions?: number
}

export interface EvictionPlan {
  /** Versions to delete, in the order chosen. */
  evict: CachedVersion[]
  /** Whether everything left (the incoming version included) fits under the capacity. */
  fits: boolean
  /** Bytes in the cache once the plan is carried out. */
  used: number
}

/** Natural order, so v9 < v10 and timestamps sort as written. */
export function compareVersions (a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true })
}

/**
 * Ready versions at the origin worth pulling without being asked: the newest `keepVersions` of each
 * model (older ones would be evicted straight away) and every pinned one.
 */
export function wantedVersions<T extends ModelVersion> (ready: readonly T[], keepVersions: number | undefined, isPinned: (v: ModelVersion) => boolean): T[] {
  if (keepVersions === undefined) return [...ready]
  const newest = new Set(byModel(ready).flatMap(vs => vs.slice(0, keepVersions)))
  return ready.filter(v => newest.has(v) || isPinned(v))
}

/**
 * What to delete so the cache keeps at most `keepVersions` per model and fits `capacity`. `cached`
 * includes any version about to be pulled (marked busy, with its full size), so it counts against both
 * limits without ever being chosen. First goes every version beyond the newest K of its model; then,
 * while over capacity, the least recently used, each model's newest version last (it is what `latest`
 * serves). Pinned and busy versions are never chosen; if they alone exceed the capacity, `fits` is false.
 */
export function planEviction (cached: readonly CachedVersion[], limits: RetentionLimits): EvictionPlan {
  const evictable = (v: CachedVersion): boolean => !v.pinned && !v.busy
  const evict: CachedVersion[] = []
  const newestOfModel = new Set<CachedVersion>()
  for (const versions of byModel(cached)) {
    newestOfModel.add(versions[0]!)
    if (limits.keepVersions !== undefined) evict.push(...versions.slice(limits.keepVersions).filter(evictable))
  }
  let used = cached.reduce((s, v) => s + v.bytes, 0) - evict.reduce((s, v) => s + v.bytes, 0)
  const capacity = limits.capacity ?? Infinity
  if (used > capacity) {
    const candidates = cached.filter(v => evictable(v) && !evict.includes(v))
      .sort((a, b) => Number(newestOfModel.has(a)) - Number(newestOfModel.has(b)) || a.lastUsedAt - b.lastUsedAt)
    for (const v of candidates) {
      if (used <= capacity) break
      evict.push(v)
      used -= v.bytes
    }
  }
  return { evict, fits: used <= capacity, used }
}

/** Versions grouped by model, newest first in each group. */
function byModel<T extends ModelVersion> (versions: readonly T[]): T[][] {
  const groups = new Map<string, T[]>()
  for (const v of versions) groups.set(v.name, [...groups.get(v.name) ?? [], v])
  return [...groups.values()].map(vs => vs.sort((a, b) => compareVersions(b.version, a.version)))
}
