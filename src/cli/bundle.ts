/**
 * The CLI's bundle: `npm run build` (run by `npm ci` as the `prepare` script) writes the CLI and the modules
 * it imports as a few files in `dist/cli/`, and the launcher runs them instead of `src/` while they are
 * current. Why: a fetch loads ~800 modules from `src/` and `node_modules/` (resolution, package.json reads,
 * one compile-cache entry each): 0.29–0.35 s and ~0.37 CPU-s to import the fetch command, against 0.05–0.06 s
 * and ~0.09 CPU-s from the bundle (this machine, compile cache warm); `--help` 0.52 → 0.17 CPU-s. In the lab
 * (N = 16 hosts on 2 cores, quarter rates) hosts reached their own start 1–1.5 s after spawn instead of
 * ~5 s, used 8.0–8.5 CPU-s instead of 8.4–9.1 and peaked at 129–133 MiB RSS instead of 152–161.
 *
 * "Current" is checked, not assumed: `dist/cli/inputs.json` records the SHA-256 of every file of `src/` the
 * bundle was built from and of `package-lock.json` (the exact dependency versions); the launcher hashes them
 * again (~125 files, ~4 ms) and runs `src/` when any differs or is missing, so an edited checkout never runs
 * stale code.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** Where the bundle goes, relative to the package root (two levels down, as `src/cli/`, so the CLI's own `../../package.json` resolves alike). */
export const BUNDLE_DIR = 'dist/cli'
/** The bundle's entry, in BUNDLE_DIR. */
export const BUNDLE_ENTRY = 'main.js'
/** The input digests, in BUNDLE_DIR: `{ inputs: { <path relative to the package root>: <sha256 hex> } }`. */
export const BUNDLE_INPUTS = 'inputs.json'

export interface BundleInputs { inputs: Record<string, string> }

/** SHA-256 (hex) of each of `files` (paths relative to `root`). Throws what reading a file throws (ENOENT …). */
export function digestInputs (root: string, files: readonly string[]): BundleInputs {
  const inputs: Record<string, string> = {}
  for (const f of [...files].sort()) inputs[f] = createHash('sha256').update(readFileSync(join(root, f))).digest('hex')
  return { inputs }
}

/**
 * The bundle to run for the package at `root`: `{ entry }` (an absolute path) when `root/dist/cli` holds a
 * bundle whose inputs all match what is on disk, else `{ stale }`, why not (no bundle, or the first input
 * that changed). Never throws.
 */
export function currentBundle (root: string): { entry: string } | { stale: string } {
  const dir = join(root, BUNDLE_DIR)
  let recorded: BundleInputs
  try {
    recorded = JSON.parse(readFileSync(join(dir, BUNDLE_INPUTS), 'utf8')) as BundleInputs
  } catch {
    return { stale: `no bundle in ${BUNDLE_DIR} (npm run build makes one)` }
  }
  const inputs = Object.entries(recorded.inputs ?? {})
  if (inputs.length === 0) return { stale: `${BUNDLE_DIR}/${BUNDLE_INPUTS} lists no inputs` }
  for (const [file, digest] of inputs) {
    let now: string
    try {
      now = digestInputs(root, [file]).inputs[file]!
    } catch {
      return { stale: `${file} is gone since the bundle was built` }
    }
    if (now !== digest) return { stale: `${file} changed since the bundle was built` }
  }
  return { entry: join(dir, BUNDLE_ENTRY) }
}
