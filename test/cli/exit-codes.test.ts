/**
 * Exit statuses: the code → status table, and the real `modelswarm` binary's help and usage errors
 * (each run as its own Node process, as a user runs it).
 */
import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { OPTIONS, type OptionName } from '../../src/cli/options.ts'
import { DiskFullError, EXIT, exitCodeFor, hintFor, IntegrityError, InvalidInputError, ManifestError, ModelswarmError, NotFoundError, NotMemberError, StoreLockedError, SwarmKeyError, TimeoutError, UntrustedSignerError, type ErrorCode } from '../../src/errors.ts'

const BIN = fileURLToPath(new URL('../../bin/modelswarm.js', import.meta.url))

describe('exitCodeFor', () => {
  // The statuses documented in `modelswarm fetch --help`: 2 usage, 3 not found, 4 integrity, 5 timeout, 6 disk full, 7 locked.
  const table: Array<[string, Error, number]> = [
    ['InvalidInputError', new InvalidInputError('bad flag'), 2],
    ['NotFoundError', new NotFoundError('no such model'), 3],
    ['IntegrityError', new IntegrityError('hash mismatch'), 4],
    ['ManifestError', new ManifestError('not canonical'), 4],
    ['UntrustedSignerError', new UntrustedSignerError('who signed this?'), 4],
    ['TimeoutError', new TimeoutError('no progress'), 5],
    ['DiskFullError', new DiskFullError('ENOSPC'), 6],
    ['StoreLockedError', new StoreLockedError('locked'), 7],
    ['NotMemberError', new NotMemberError('refused'), 8],
    ['SwarmKeyError', new SwarmKeyError('malformed'), 2]
  ]

  it.each(table)('%s exits %i', (_name, err, status) => {
    expect(exitCodeFor(err)).toBe(status)
    expect(err).toBeInstanceOf(ModelswarmError)
  })

  it('the EXIT constants are the documented numbers', () => {
    expect(EXIT).toEqual({
      ok: 0, failure: 1, usage: 2, notFound: 3, integrity: 4, timeout: 5, diskFull: 6, locked: 7, refused: 8, childStart: 127, interrupted: 130
    })
  })

  it('errors a user can act on carry a hint; usage errors point at --help', () => {
    for (const err of [new NotFoundError('x'), new IntegrityError('x'), new UntrustedSignerError('x'), new TimeoutError('x'), new DiskFullError('x'), new StoreLockedError('x'), new NotMemberError('x'), new SwarmKeyError('x')]) {
      expect(hintFor(err), err.name).toMatch(/\w{3,}/)
    }
    expect(hintFor(new InvalidInputError('x'))).toMatch(/--help/)
    expect(hintFor(new UntrustedSignerError('x'))).toMatch(/--trust/)
  })

  it('unknown errors exit 1 and have no hint', () => {
    const unknown: unknown[] = [
      new Error('boom'),
      null,
      undefined,
      new TypeError('x is undefined'),
      Object.assign(new Error('no space'), { code: 'ENOSPC' }),
      new ModelswarmError('MS_SOMETHING_NEW' as ErrorCode, 'a code nobody mapped'),
      // Keys that exist on every object must not be mistaken for table entries.
      { code: 'toString' },
      { code: '__proto__' },
      { code: 'constructor' },
      'a thrown string',
      42
    ]
    for (const err of unknown) {
      expect(exitCodeFor(err), String((err as { code?: string } | null | undefined)?.code ?? err)).toBe(EXIT.failure)
      expect(hintFor(err)).toBeUndefined()
    }
  })

  it('maps by code, so an error crossing a module boundary (or a copy of one) keeps its status', () => {
    expect(exitCodeFor({ code: 'MS_TIMEOUT', message: 'from elsewhere' })).toBe(EXIT.timeout)
    expect(exitCodeFor(Object.assign(new Error('x'), { code: 'MS_NOT_FOUND' }))).toBe(EXIT.notFound)
  })
})

interface Result { code: number | null, stdout: string, stderr: string }

/** Runs the real binary with no MODELSWARM_* variables from the test's own environment. */
function modelswarm (args: string[]): Promise<Result> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MODELSWARM_')))
  const proc = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  return new Promise((resolve, reject) => {
    proc.once('error', reject)
    proc.once('close', code => resolve({ code, stdout, stderr }))
  })
}

const envOf = (names: OptionName[]): string[] => names.map(n => OPTIONS[n].env)

describe('modelswarm binary', () => {
  it.each([
    ['--help', [], ['logLevel']],
    ['fetch --help', ['fetch'], ['out', 'bootstrap', 'trust', 'listen', 'linger', 'timeout', 'uploadRate', 'hostCache', 'follow', 'followInterval', 'followSignal', 'keep', 'noBulk', 'json', 'swarmKeyFile', 'allowPeers', 'allowCidr', 'identityFile']],
    ['keygen --help', ['keygen'], ['swarmKeyFile', 'identityFile', 'json']],
    ['seed --help', ['seed'], ['origin', 'hdfs', 'hdfsRoot', 'hdfsUser', 'hdfsToken', 'marker', 'cacheDir', 'cacheCapacity', 'keepVersions', 'pin', 'inUseWindow', 'listen', 'lineRate', 'pollInterval', 'parallelReads', 'chunkSize', 'admin', 'noBulk', 'json', 'swarmKeyFile', 'allowPeers', 'allowCidr', 'identityFile']]
  ] as Array<[string, string[], OptionName[]]>)('`modelswarm %s` exits 0 and names the env var of every option', async (_label, command, options) => {
    const r = await modelswarm([...command, '--help'])
    expect(r.code, r.stderr).toBe(EXIT.ok)
    for (const env of envOf(options)) expect(r.stdout, env).toMatch(new RegExp(`\\b${env}\\b`))
    for (const name of options) expect(r.stdout, name).toContain(OPTIONS[name].flags.split(' ')[0]!)
  })

  it('`modelswarm fetch --help` documents the same exit statuses as the EXIT table', async () => {
    const r = await modelswarm(['fetch', '--help'])
    const line = r.stdout.split('\n').find(l => l.startsWith('Exit status:'))
    expect(line).toBeDefined()
    const documented = Object.fromEntries([...line!.matchAll(/(\d+) ([a-z ]+?)(?=,|\.)/g)].map(m => [m[2], Number(m[1])]))
    expect(documented).toEqual({
      done: EXIT.ok,
      usage: EXIT.usage,
      'not found': EXIT.notFound,
      integrity: EXIT.integrity,
      timeout: EXIT.timeout,
      'disk full': EXIT.diskFull,
      'directory locked': EXIT.locked,
      'refused by the swarm': EXIT.refused,
      'command not found': EXIT.childStart,
      interrupted: EXIT.interrupted
    })
  })

  it('an unknown flag exits 2 and says which flag', async () => {
    const top = await modelswarm(['--no-such-flag'])
    expect(top.code).toBe(EXIT.usage)
    expect(top.stderr).toMatch(/--no-such-flag/)
    const sub = await modelswarm(['fetch', 'qa-llm', '--out', '/tmp/x', '--bootstrap', '/ip4/127.0.0.1/tcp/1', '--trust', 'x', '--bogus'])
    expect(sub.code).toBe(EXIT.usage)
    expect(sub.stderr).toMatch(/--bogus/)
  })

  it('fetch without --out exits 2 and names the missing option', async () => {
    const r = await modelswarm(['fetch', 'qa-llm', '--bootstrap', '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWA', '--trust', '12D3KooWA'])
    expect(r.code).toBe(EXIT.usage)
    expect(r.stderr).toMatch(/--out/)
    expect(r.stdout).toBe('')
  })

  it('an unknown command exits 2', async () => {
    const r = await modelswarm(['frobnicate'])
    expect(r.code).toBe(EXIT.usage)
  })
})
