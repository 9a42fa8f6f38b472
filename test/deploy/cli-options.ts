/** The flags and env vars `modelswarm <command>` accepts, read from its real --help (global options included). */
import { execFileSync } from 'node:child_process'
import { BIN } from '../support/cli.ts'

export interface CliOptions { flags: Set<string>, env: Set<string> }

export function cliOptions (command: 'seed' | 'fetch'): CliOptions {
  const help = [[], [command]].map(sub => execFileSync(process.execPath, [BIN, ...sub, '--help'], { encoding: 'utf8' })).join('\n')
  // commander wraps long help lines, splitting "(env:" from the variable's name.
  const text = help.replace(/\s+/g, ' ')
  return {
    flags: new Set(text.match(/(?<=\s)--[a-z][a-z-]*/g) ?? []),
    env: new Set([...text.matchAll(/env: (MODELSWARM_[A-Z_]+)/g)].map(m => m[1]!))
  }
}
