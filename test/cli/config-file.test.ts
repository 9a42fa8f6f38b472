/**
 * The config file: option values under their long flag names, a section per command, the flags' own
 * parsers, and commander's precedence flag > env var > config file > default; unknown keys and bad values
 * name the file and the key. Commands are built from the real options table; one test runs the real binary.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Command } from 'commander'
import { applyConfigFile } from '../../src/cli/config-file.ts'
import { option } from '../../src/cli/options.ts'
import { InvalidInputError } from '../../src/errors.ts'
import { BIN } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'

const PEER = '12D3KooWSN2DUsXkHZz6bxtgtcNqzHTADQKvhpTTwJnqFgyG85UX'

/** Parses `args` with a program shaped like modelswarm's; resolves with the program's and the invoked command's options. */
async function parse (args: string[]): Promise<{ global: Record<string, unknown>, opts: Record<string, unknown> }> {
  let opts: Record<string, unknown> = {}
  const program = new Command('modelswarm').exitOverride().configureOutput({ writeErr: () => {} })
    .addOption(option('logLevel')).addOption(option('config'))
    .hook('preSubcommand', async (_, command) => { await applyConfigFile(program, command) })
  program.command('seed').addOption(option('cacheDir')).addOption(option('listen')).addOption(option('lineRate'))
    .addOption(option('noBulk')).addOption(option('json')).action(o => { opts = o })
  program.command('fetch').addOption(option('out', { required: true })).addOption(option('listen')).addOption(option('json')).action(o => { opts = o })
  program.command('status').addOption(option('seeders')).addOption(option('watch')).action(o => { opts = o })
  await program.parseAsync(['node', 'modelswarm', ...args])
  return { global: program.opts(), opts }
}

async function configFile (text: string, name = 'modelswarm.yaml'): Promise<string> {
  const file = join(await tempDir('ms-config-'), name)
  await writeFile(file, text)
  return file
}

afterEach(() => { vi.unstubAllEnvs() })

describe('config file', () => {
  it('gives options their values through the flags\' parsers; a command\'s section overrides the top level', async () => {
    const file = await configFile(`
log-level: debug
listen: /ip4/127.0.0.1/tcp/4001
json: true
seed:
  cache-dir: /nvme/ms
  line-rate: 400MiB/s
  listen: [/ip4/10.0.0.1/tcp/4001, /ip4/10.0.0.2/tcp/4001]
  no-bulk: true
fetch:
  out: /models/qa
`)
    const seed = await parse(['--config', file, 'seed'])
    expect(seed.global.logLevel).toBe('debug')
    expect(seed.opts).toEqual({ cacheDir: '/nvme/ms', lineRate: 400 * 1024 * 1024, listen: ['/ip4/10.0.0.1/tcp/4001', '/ip4/10.0.0.2/tcp/4001'], bulk: false, json: true })
    // fetch's required --out comes from its section; the top-level listen applies to it.
    expect((await parse(['--config', file, 'fetch'])).opts).toEqual({ out: '/models/qa', listen: ['/ip4/127.0.0.1/tcp/4001'], json: true })
  })

  it('reads JSON too, and MODELSWARM_CONFIG names the file', async () => {
    const file = await configFile(JSON.stringify({ status: { seeders: ['a:7070', 'b:7070'], watch: '5s' } }), 'modelswarm.json')
    vi.stubEnv('MODELSWARM_CONFIG', file)
    expect((await parse(['status'])).opts).toEqual({ seeders: ['a:7070', 'b:7070'], watch: 5000 })
  })

  it('flag > env var > config file > default, lists replaced rather than extended', async () => {
    const file = await configFile('seed:\n  cache-dir: /from/file\n  listen: /ip4/10.0.0.1/tcp/1\nlog-level: warn\n')
    expect((await parse(['seed'])).opts).toMatchObject({ cacheDir: join(process.cwd(), 'modelswarm-cache'), listen: ['/ip4/0.0.0.0/tcp/0'] })
    expect((await parse(['--config', file, 'seed'])).opts).toMatchObject({ cacheDir: '/from/file', listen: ['/ip4/10.0.0.1/tcp/1'] })
    vi.stubEnv('MODELSWARM_CACHE_DIR', '/from/env')
    vi.stubEnv('MODELSWARM_LISTEN', '/ip4/10.0.0.2/tcp/2')
    vi.stubEnv('MODELSWARM_LOG_LEVEL', 'error')
    const env = await parse(['--config', file, 'seed'])
    expect(env.opts).toMatchObject({ cacheDir: '/from/env', listen: ['/ip4/10.0.0.2/tcp/2'] })
    expect(env.global.logLevel).toBe('error')
    const cli = await parse(['--config', file, '--log-level', 'info', 'seed', '--cache-dir', '/from/flag', '--listen', '/ip4/10.0.0.3/tcp/3'])
    expect(cli.opts).toMatchObject({ cacheDir: '/from/flag', listen: ['/ip4/10.0.0.3/tcp/3'] })
    expect(cli.global.logLevel).toBe('info')
  })

  it('unknown keys and bad values are usage errors naming the file and the key, wherever they are', async () => {
    const cases: Array<[string, RegExp]> = [
      ['cache_dir: /x\n', /: cache_dir: no such option/],
      ['seed:\n  out: /x\n', /: seed\.out: not an option of seed/],
      ['seed:\n  line-rate: fast\n', /: seed\.line-rate: .*fast/],
      ['json: "yes"\n', /: json: must be true or false/],
      ['fetch:\n  out: [/a, /b]\n', /: fetch\.out: takes one value, not a list/],
      // checked even when another command runs
      ['fetch:\n  out: /\n', /: fetch\.out: --out must name a directory other than \//],
      ['status: 3\n', /: status: a command's section must be a mapping/],
      ['- a\n- b\n', /must be a mapping/],
      ['seed: {cache-dir: /a\n', /not valid YAML or JSON/],
      ['listen: /a\nlisten: /b\n', /not valid YAML or JSON/]
    ]
    for (const [text, message] of cases) {
      const file = await configFile(text)
      const err = await parse(['--config', file, 'seed']).catch((e: unknown) => e)
      expect(err, text).toBeInstanceOf(InvalidInputError)
      expect((err as Error).message, text).toContain(file)
      expect((err as Error).message, text).toMatch(message)
    }
    await expect(parse(['--config', '/nonexistent/ms.yaml', 'seed'])).rejects.toThrow(/--config \/nonexistent\/ms\.yaml: ENOENT/)
  })

  it('the real binary takes required options from the file, and exits 2 naming a bad key', async () => {
    const dir = await tempDir('ms-config-')
    const good = join(dir, 'good.yaml')
    await writeFile(good, `json: true\nfetch:\n  out: ${join(dir, 'out')}\n  bootstrap: /ip4/127.0.0.1/tcp/1/p2p/${PEER}\n  trust: ${PEER}\n`)
    const bad = join(dir, 'bad.yaml')
    await writeFile(bad, 'fetch:\n  output: /x\n')
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MODELSWARM_')))
    const run = (args: string[], env: Record<string, string> = {}): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, encoding: 'utf8' })
    // Without the file commander stops at the missing --out; with it the command runs and refuses the name.
    expect(run(['fetch', '../etc']).stderr).toMatch(/required option '--out <dir>' not specified/)
    const r = run(['fetch', '../etc'], { MODELSWARM_CONFIG: good })
    expect(r.status).toBe(2)
    expect(JSON.parse(r.stdout as string)).toMatchObject({ ok: false, code: 'MS_INVALID_INPUT' })
    const b = run(['--config', bad, 'fetch', 'qa'])
    expect(b.status).toBe(2)
    expect(b.stderr).toContain(`--config ${bad}: fetch.output: not an option of fetch`)
  })
})
