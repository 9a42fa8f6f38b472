/**
 * The host cache (`--cache-dir`): one directory per host that every modelswarm process on it shares, so a
 * version crosses the network to a host once however many containers ask for it (as Dragonfly's dfdaemon
 * and Kraken's agent keep one store per node).
 *
 * Layout: `<cache-dir>/<name>/<version>/` is a complete or partial fetch output directory — the model's
 * files plus its `.modelswarm/` state (bitfield, manifest, store lock) — written only by the process that
 * holds that store's lock. Fetch, the read gateway and the node agent all find a version there.
 */
import { join } from 'node:path'
import type { ModelVersion } from '../model-version.ts'

/** Directory of one version inside a host cache; `v` must be a validated ModelVersion (names have no '/'). */
export function versionCacheDir (cacheDir: string, v: ModelVersion): string {
  return join(cacheDir, v.name, v.version)
}
