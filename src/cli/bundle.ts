/**
 * The CLI's bundle: `npm run build` (run by `npm ci` as the `prepare` script) writes the CLI and the modules
 * it imports as a few files in `dist/cli-<build>/`, and the launcher runs them instead of `src/` while they
 * are current. Why: a fetch loads ~800 modules from `src/` and `node_modules/` (resolution, package.json
 * reads, one compile-cache entry each): 0.29–0.35 s and ~0.37 CPU-s to import the fetch command, against
 * 0.05–0.06 s and ~0.09 CPU-s from the bundle (this machine, compile cache warm); `--help` 0.52 → 0.17 CPU-s.
 * In the lab (N = 16 hosts on 2 cores, quarter rates) hosts reached their own start 1–1.5 s after spawn
 * instead of ~5 s and peaked at 129–138 MiB RSS instead of 152–161.
 *
 * `dist/cli.json` names the current build's folder and records the SHA-256 of every file of `src/` in its
 * module graph (tree-shaken ones included), of `package-lock.json` and of `patches/*.patch` (which pin
 * node_modules: a hand-edited or linked package is not noticed). The launcher hashes them again (~125
 * files, ~4 ms) and runs `src/` when any differs or is missing, or a patch was added since. A new build goes
 * to a new folder and the pointer is switched in one rename, so a process started from the previous build
 * can still load its lazily imported chunks.
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** The pointer to the current build, relative to the package root. */
export const BUNDLE_POINTER = 'dist/cli.json'
/** A build's folder is `dist/cli-<build>`: two levels down, as `src/cli/`, so the CLI's `../../package.json` resolves alike. */
export const BUNDLE_PREFIX = 'dist/cli-'
/** The entry, in a build's folder. */
export const BUNDLE_ENTRY = 'main.js'

/** What BUNDLE_POINTER holds: the build's folder (relative to the package root) and its inputs' SHA-256 (hex) by path. */
export interface BundlePointer { dir: string, inputs: Record<string, string> }

/**
 * What pins node_modules, relative to `root`: package-lock.json and the patches `npm ci` applies to it
 * (patch-package, patches/*.patch). Inputs of every build; a patch added since a build makes it stale too.
 */
export function pinFiles (root: string): string[] {
  let patches: string[] = []
  try {
    patches = readdirSync(join(root, 'patches')).filter(f => f.endsWith('.patch')).map(f => `patches/${f}`)
  } catch { /* no patches/ folder */ }
  return ['package-lock.json', ...patches]
}

/** SHA-256 (hex) of `file` (relative to `root`). Throws what reading it throws (ENOENT …). */
function digestFile (root: string, file: string): string {
  return createHash('sha256').update(readFileSync(join(root, file))).digest('hex')
}

/** SHA-256 (hex) of each of `files` (paths relative to `root`), by path. Throws what reading a file throws. */
export function digestInputs (root: string, files: Iterable<string>): Record<string, string> {
  const inputs: Record<string, string> = {}
  for (const f of [...files].sort()) inputs[f] = digestFile(root, f)
  return inputs
}

/** BUNDLE_POINTER of the package at `root` as written, or undefined when there is none or it is not JSON. */
export function readBundlePointer (root: string): BundlePointer | undefined {
  try {
    return JSON.parse(readFileSync(join(root, BUNDLE_POINTER), 'utf8')) as BundlePointer
  } catch {
    return undefined
  }
}

/**
 * The bundle to run for the package at `root`: `{ entry }` (an absolute path) when BUNDLE_POINTER names a
 * build whose inputs all match what is on disk, else `{ stale }`, why not (no bundle, or the first input
 * that changed). Never throws.
 */
export function currentBundle (root: string): { entry: string } | { stale: string } {
  const pointer = readBundlePointer(root)
  if (pointer === undefined) return { stale: `no ${BUNDLE_POINTER} (npm run build makes one)` }
  const inputs = Object.entries(pointer.inputs ?? {})
  if (typeof pointer.dir !== 'string' || !pointer.dir.startsWith(BUNDLE_PREFIX) || inputs.length === 0) return { stale: `${BUNDLE_POINTER} is not a build's` }
  const added = pinFiles(root).find(f => pointer.inputs[f] === undefined)
  if (added !== undefined) return { stale: `${added} is new since the bundle was built` }
  for (const [file, digest] of inputs) {
    let now: string
    try {
      now = digestFile(root, file)
    } catch {
      return { stale: `${file} is gone since the bundle was built` }
    }
    if (now !== digest) return { stale: `${file} changed since the bundle was built` }
  }
  const entry = join(root, pointer.dir, BUNDLE_ENTRY)
  return existsSync(entry) ? { entry } : { stale: `${pointer.dir} is gone` }
}
