/**
 * A model version's identity, `NAME@VERSION` (e.g. `qa-llm@2026-11-24T10-00`): one type, one parser and
 * one formatter for every layer (manifest, origins, seeder cache, CLI, logs). `@latest` is not a version
 * but a request for the newest one a seeder published; it is reserved and never a version's own name.
 */
import { InvalidInputError } from './errors.ts'

export interface ModelVersion {
  readonly name: string
  readonly version: string
}

/** What a user may ask for: a version, or the newest one (`version` undefined). */
export interface ModelRef {
  readonly name: string
  readonly version: string | undefined
}

/** Model names: letters, digits, '.', '_', '-', at most 128, not starting with a punctuation mark. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
/** Versions: as names, plus ':' and '+' (timestamps, semver builds). */
export const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/
export const LATEST = 'latest'

export function isValidName (name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name)
}

export function isValidVersion (version: unknown): version is string {
  return typeof version === 'string' && VERSION_RE.test(version) && version !== LATEST
}

/** `NAME@VERSION`, the form used in logs, keys, flags and the admin API. */
export function formatModelVersion (v: ModelVersion): string {
  return `${v.name}@${v.version}`
}

/** `NAME@VERSION`, or `NAME@latest` for a request of the newest version. */
export function formatModelRef (r: ModelRef): string {
  return `${r.name}@${r.version ?? LATEST}`
}

/** Parses `NAME` or `NAME@VERSION` (`NAME@latest` = `NAME`). Throws InvalidInputError naming the rule broken. */
export function parseModelRef (text: string): ModelRef {
  const at = text.indexOf('@')
  const name = at < 0 ? text : text.slice(0, at)
  const version = at < 0 ? undefined : text.slice(at + 1)
  if (!isValidName(name)) throw new InvalidInputError(`model ${JSON.stringify(text)}: the name must be letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit), as NAME or NAME@VERSION`)
  if (version === undefined || version === LATEST) return { name, version: undefined }
  if (!VERSION_RE.test(version)) throw new InvalidInputError(`model ${JSON.stringify(text)}: the version must be letters, digits, '.', '_', ':', '+' or '-' (at most 128, starting with a letter or digit)`)
  return { name, version }
}

/** Parses `NAME@VERSION` where a concrete version is required (pins, preheat). */
export function parseModelVersion (text: string): ModelVersion {
  const ref = parseModelRef(text)
  if (ref.version === undefined) throw new InvalidInputError(`expected NAME@VERSION, got ${JSON.stringify(text)}`)
  return { name: ref.name, version: ref.version }
}
