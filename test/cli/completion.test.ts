/**
 * `modelswarm completion`: scripts printed by the real binary, loaded into real shells. Bash's is driven
 * the way bash drives it (COMP_WORDS, COMP_CWORD, then COMPREPLY); each command completes exactly the
 * flags its --help lists. zsh and fish scripts are checked where those shells are installed.
 */
import { describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'

const modelswarm = (...args: string[]): string => execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8' })
const has = (shell: string): boolean => spawnSync(shell, ['-c', 'exit 0']).status === 0
/** The script for `shell` in a file (fish will not read a script from a pipe with -n). */
async function saved (shell: string): Promise<string> {
  const file = join(await tempDir('ms-completion-'), `modelswarm.${shell}`)
  await writeFile(file, modelswarm('completion', shell))
  return file
}

/** What bash offers for the words typed so far (the last one being completed), with the script loaded. */
function bashComplete (script: string, words: string[]): string[] {
  const driver = `${script}
fn=$(complete -p modelswarm | sed -E 's/.*-F ([^ ]+).*/\\1/')
COMP_WORDS=("$@"); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
"$fn" modelswarm "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "\${COMPREPLY[@]}"`
  const r = spawnSync('bash', ['-c', driver, 'bash', ...words], { encoding: 'utf8' })
  expect(r.stderr).toBe('')
  return r.stdout.split('\n').filter(l => l !== '').sort()
}

/** The long flags `modelswarm CMD --help` lists. */
function helpFlags (command: string): string[] {
  return [...new Set([...modelswarm(command, '--help').matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm)].map(m => m[1]!))].sort()
}

describe('modelswarm completion', () => {
  const bash = modelswarm('completion', 'bash')

  it('bash: the script parses and completes subcommands, flags, argument choices and directories', async () => {
    expect(spawnSync('bash', ['-n'], { input: bash }).status).toBe(0)
    expect(bashComplete(bash, ['modelswarm', 'se'])).toEqual(['seed'])
    expect(bashComplete(bash, ['modelswarm', ''])).toEqual(['completion', 'demo', 'fetch', 'preheat', 'seed', 'status'])
    expect(bashComplete(bash, ['modelswarm', 'seed', '--cache-d'])).toEqual(['--cache-dir'])
    expect(bashComplete(bash, ['modelswarm', '--log-level', 'debug', 'fetch', '--o'])).toEqual(['--out'])
    expect(bashComplete(bash, ['modelswarm', 'completion', ''])).toEqual(['bash', 'fish', 'zsh'])
    // A flag's value: directories after a <dir> flag, nothing after a free-form one.
    const dir = await tempDir('ms-completion-')
    await mkdir(join(dir, 'models'))
    expect(bashComplete(bash, ['modelswarm', 'fetch', 'qa', '--out', join(dir, 'mo')])).toEqual([join(dir, 'models')])
    expect(bashComplete(bash, ['modelswarm', 'seed', '--line-rate', ''])).toEqual([])
  })

  it('bash: each command completes the flags its --help lists, and the global ones', () => {
    const global = ['--config', '--help', '--log-level', '--version']
    for (const command of ['seed', 'fetch', 'preheat', 'status', 'demo']) {
      const offered = bashComplete(bash, ['modelswarm', command, '--'])
      expect(offered, command).toEqual([...new Set([...helpFlags(command), ...global])].sort())
    }
  })

  it.skipIf(!has('zsh'))('zsh: the script parses', async () => {
    expect(spawnSync('zsh', ['-n', await saved('zsh')]).status).toBe(0)
  })

  it.skipIf(!has('fish'))('fish: the script parses and completes subcommands and flags', async () => {
    const file = await saved('fish')
    expect(spawnSync('fish', ['-n', file]).status).toBe(0)
    const complete = (line: string): string[] => execFileSync('fish', ['-c', `source ${file}; complete -C ${JSON.stringify(line)}`], { encoding: 'utf8' })
      .split('\n').filter(l => l !== '').map(l => l.split('\t')[0]!).sort()
    expect(complete('modelswarm se')).toEqual(['seed'])
    expect(complete('modelswarm seed --cache-d')).toEqual(['--cache-dir'])
  })

  it('refuses a shell it has no script for', () => {
    const r = spawnSync(process.execPath, [BIN, 'completion', 'powershell'], { encoding: 'utf8' })
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/Allowed choices are bash, zsh, fish/)
  })
})
