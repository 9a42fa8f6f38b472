/** Which versions a host keeps on disk in follow mode: a pure decision, apart from the listing and deleting. */

export interface HeldVersion {
  version: string
  /** When it became complete on this host, ms since the epoch: newer ones are kept first. */
  completedAt: number
}

/**
 * The versions to delete so that the `keep` most recently completed remain, never one in `inUse` (the
 * version `current` points at, one being fetched). In-use versions count towards `keep` when they are among
 * the newest; older in-use versions are kept beyond it. Ties on time keep the greater version name.
 * @returns version names, oldest first
 */
export function versionsToRemove (held: readonly HeldVersion[], keep: number, inUse: ReadonlySet<string>): string[] {
  const newestFirst = [...held].sort((a, b) => b.completedAt - a.completedAt || (a.version < b.version ? 1 : a.version > b.version ? -1 : 0))
  return newestFirst.slice(Math.max(0, keep)).filter(v => !inUse.has(v.version)).map(v => v.version).reverse()
}
