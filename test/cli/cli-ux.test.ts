/**
 * Command-line conventions with the real binary: --version, a pipe closed early, boolean environment
 * variables read as booleans (MODELSWARM_JSON=false used to turn JSON on), usage errors for what is not a
 * model name, and failures as JSON on stdout for scripts that asked for JSON.
 */
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { BIN } from '../support/cli.ts'

const PEER = '12D3KooWSN2DUsXkHZz6bxtgtcNqzHTADQKvhpTTwJnqFgyG85UX'
const run = (args: string[], env: Record<string, string> = {}, shell?: string): { status: number | null, stdout: string, stderr: string } => {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MODELSWARM_')))
  const r = shell === undefined
    ? spawnSync(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, encoding: 'utf8' })
    : spawnSync('bash', ['-o', 'pipefail', '-c', shell], { env: { ...clean, ...env }, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('modelswarm CLI conventions', () => {
  it('--version prints the package version', () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    expect(run(['--version'])).toMatchObject({ status: 0, stdout: `${version}\n` })
  })

  it('`--help | head -1` ends quietly, without a stack trace', () => {
    const r = run([], {}, `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} fetch --help | head -1`)
    expect(r.status).toBe(0)
    expect(r.stderr).toBe('')
  })

  it('boolean environment variables are read as booleans; anything else is a usage error naming the variable', () => {
    const usage = ['fetch', 'bad name', '--out', '/tmp/ms-ux-x', '--bootstrap', `/ip4/127.0.0.1/tcp/1/p2p/${PEER}`, '--trust', PEER]
    expect(run(usage, { MODELSWARM_JSON: 'false' }).stdout).toBe('')
    expect(JSON.parse(run(usage, { MODELSWARM_JSON: 'true' }).stdout)).toMatchObject({ ok: false, code: 'MS_INVALID_INPUT', exit: 2 })
    const maybe = run(usage, { MODELSWARM_JSON: 'maybe' })
    expect(maybe.status).toBe(2)
    expect(maybe.stderr).toMatch(/MODELSWARM_JSON="maybe" is not a boolean/)
  })

  it('a model name that could be a path is a usage error at once, reported as JSON with --json', () => {
    const r = run(['fetch', '../etc', '--out', '/tmp/ms-ux-x', '--bootstrap', `/ip4/127.0.0.1/tcp/1/p2p/${PEER}`, '--trust', PEER, '--json'])
    expect(r.status).toBe(2)
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, code: 'MS_INVALID_INPUT', hint: 'see --help', exit: 2 })
  })

  it('a rate without a unit is a usage error naming the forms, not 400 bytes per second', () => {
    const r = run(['seed', '--origin', '/tmp', '--line-rate', '400'])
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/--line-rate <rate>' argument '400' is invalid\. invalid rate "400": expected bytes or bits per second with a unit, e\.g\. 400MiB\/s/)
  })
})
