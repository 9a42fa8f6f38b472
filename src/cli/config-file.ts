/**
 * The config file (`--config FILE`, `MODELSWARM_CONFIG`): YAML or JSON (YAML reads both) holding option
 * values under their long flag names, e.g. `cache-dir: /nvme/modelswarm`, `line-rate: 400MiB/s`,
 * `no-bulk: true`, lists as YAML lists or comma-separated strings. A key at the top level applies to every
 * command that has the option; a section named for a command (`seed:`, `fetch:` …) applies to that command
 * and overrides the top level. Values go through the flags' own parsers and are given to commander with
 * the source `config`, so its precedence holds: flag > env var > config file > default. An unknown key or
 * a bad value is an InvalidInputError naming the file and the key (exit 2).
 */
import { readFile } from 'node:fs/promises'
import type { Command, Option } from 'commander'
import { InvalidInputError } from '../errors.ts'
import { markReplaceable } from './options.ts'

type Mapping = Record<string, unknown>

/** One value to give commander: on which command, under which attribute. */
export interface ConfigValue {
  command: Command
  /** The key as written in the file, e.g. `seed.cache-dir`. */
  key: string
  attribute: string
  value: unknown
}

/** Reads and parses `file`. Throws InvalidInputError when it cannot be read, is not YAML/JSON, or is not a mapping. */
export async function readConfigFile (file: string): Promise<Mapping> {
  const text = await readFile(file, 'utf8').catch((err: unknown) => {
    throw new InvalidInputError(`--config ${file}: ${(err as Error).message}`, { cause: err })
  })
  let doc: unknown
  try {
    // Loaded only when a file is given: the parser is 72 modules every process would otherwise load.
    doc = (await import('yaml')).parse(text)
  } catch (err) {
    throw new InvalidInputError(`--config ${file}: not valid YAML or JSON: ${(err as Error).message}`, { cause: err })
  }
  if (doc === null || doc === undefined) return {}
  if (!isMapping(doc)) throw new InvalidInputError(`--config ${file}: must be a mapping of option names to values`)
  return doc
}

/**
 * The values `config` gives `command` (a subcommand of `program`) and the program itself, after checking
 * the whole file: every key must be a long flag of the program or of some command, or a command's section
 * holding flags of that command or the program; every value must parse as that flag's value would.
 */
export function configValues (config: Mapping, file: string, program: Command, command: Command): ConfigValue[] {
  const bad = (key: string, why: string): InvalidInputError => new InvalidInputError(`--config ${file}: ${key}: ${why}`)
  const global = flagsOf(program).filter(([flag]) => flag !== 'config')
  const picked = new Map<string, ConfigValue>()
  const take = (v: ConfigValue): void => { picked.set(`${v.command.name()}\0${v.attribute}`, v) }
  // Top level first, so a command's section overrides it.
  for (const [key, raw] of Object.entries(config)) {
    if (program.commands.some(c => c.name() === key)) continue
    const owners = [[program, global] as const, ...program.commands.map(c => [c, flagsOf(c)] as const)]
      .flatMap(([cmd, flags]) => flags.filter(([flag]) => flag === key).map(([, o]) => [cmd, o] as const))
    if (owners.length === 0) throw bad(key, `no such option (keys are long flag names without the dashes, or a command: ${program.commands.map(c => c.name()).join(', ')})`)
    for (const [cmd, o] of owners) {
      const value = valueFor(o, raw, key, bad)
      if (value !== undefined && (cmd === program || cmd === command)) take({ command: cmd, key, attribute: o.attributeName(), value })
    }
  }
  for (const sub of program.commands) {
    const section = config[sub.name()]
    if (section === undefined) continue
    if (!isMapping(section)) throw bad(sub.name(), 'a command\'s section must be a mapping of option names to values')
    const flags = [...flagsOf(sub), ...global]
    for (const [name, raw] of Object.entries(section)) {
      const key = `${sub.name()}.${name}`
      const o = flags.find(([flag]) => flag === name)?.[1]
      if (o === undefined) throw bad(key, `not an option of ${sub.name()} (see modelswarm ${sub.name()} --help)`)
      const value = valueFor(o, raw, key, bad)
      const owner = global.some(([, g]) => g === o) ? program : sub
      if (value !== undefined && sub === command) take({ command: owner, key, attribute: o.attributeName(), value })
    }
  }
  return [...picked.values()]
}

/**
 * Reads `--config` (already parsed on `program`) and gives its values to `program` and `command` wherever
 * neither a flag nor an env var set the option (commander's sources `cli` and `env`).
 */
export async function applyConfigFile (program: Command, command: Command): Promise<void> {
  const file = program.opts().config as string | undefined
  if (file === undefined) return
  for (const v of configValues(await readConfigFile(file), file, program, command)) {
    const source = v.command.getOptionValueSource(v.attribute)
    if (source !== undefined && source !== 'default') continue
    // A later flag or env var replaces a list from the file rather than extending it.
    markReplaceable(v.value)
    v.command.setOptionValueWithSource(v.attribute, v.value, 'config')
  }
}

/** A command's options that take a config key: long flag name without the dashes → option. */
function flagsOf (cmd: Command): Array<[string, Option]> {
  return cmd.options.filter(o => o.long !== undefined && o.long !== '--version' && o.long !== '--help').map(o => [o.long!.slice(2), o])
}

/**
 * The value commander would hold had the flag been given `raw` on the command line; undefined for an
 * optional-value flag set to false (left unset). Throws what `bad` makes for a value of the wrong kind or
 * one the flag's parser refuses.
 */
function valueFor (o: Option, raw: unknown, key: string, bad: (key: string, why: string) => Error): unknown {
  if (o.isBoolean() || o.negate) {
    if (typeof raw !== 'boolean') throw bad(key, `must be true or false, got ${JSON.stringify(raw)}`)
    return o.negate ? !raw : raw
  }
  if (o.optional && typeof raw === 'boolean') return raw ? true : undefined
  if (Array.isArray(raw) && !o.variadic) throw bad(key, 'takes one value, not a list')
  const items = Array.isArray(raw) ? raw : [raw]
  if (items.length === 0) throw bad(key, 'is an empty list')
  let value: unknown
  for (const item of items) {
    if (typeof item !== 'string' && !(typeof item === 'number' && Number.isFinite(item))) throw bad(key, `must be a string or a number, got ${JSON.stringify(item)}`)
    try {
      value = o.parseArg !== undefined ? o.parseArg(String(item), value) : o.variadic ? [...(value as string[] | undefined ?? []), String(item)] : String(item)
    } catch (err) {
      throw bad(key, (err as Error).message)
    }
  }
  return value
}

function isMapping (v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
