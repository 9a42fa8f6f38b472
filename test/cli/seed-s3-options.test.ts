/** `seed --origin s3://…` and the --s3-* flags: parsed by the options table, refused with usage errors by the real CLI. */
import { describe, expect, it } from 'vitest'
import { Command } from 'commander'
import { option } from '../../src/cli/options.ts'
import { run, track } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'

const parse = (args: string[], env: Record<string, string> = {}): Record<string, unknown> => {
  const c = new Command().exitOverride().configureOutput({ writeErr: () => {} })
  for (const name of ['origin', 's3Endpoint', 's3Region', 's3PathStyle', 's3Profile', 's3AccessKeyId', 's3SecretAccessKeyFile'] as const) c.addOption(option(name))
  const saved = { ...process.env }
  Object.assign(process.env, env)
  try {
    return c.parse(['node', 'modelswarm', ...args]).opts()
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k]
  }
}

describe('seed options for an S3 origin', () => {
  it('--origin takes an s3:// URL as given and a directory as an absolute path; endpoints are normalised', () => {
    expect(parse(['--origin', 's3://models/prod', '--s3-endpoint', 'http://minio:9000/', '--s3-path-style'])).toMatchObject({ origin: 's3://models/prod', s3Endpoint: 'http://minio:9000', s3PathStyle: true })
    expect(parse(['--origin', 'rel/dir']).origin).toMatch(/^\/.*\/rel\/dir$/)
    expect(parse([], { MODELSWARM_ORIGIN: 's3://models', MODELSWARM_S3_REGION: 'eu-west-1' })).toMatchObject({ origin: 's3://models', s3Region: 'eu-west-1' })
    expect(() => parse(['--origin', 's3://Models/x'])).toThrow(/not a bucket name/)
    expect(() => parse(['--s3-endpoint', 'http://k:Zq9pw0rd@minio:9000'])).toThrow(/must not hold credentials/)
  })

  it('the CLI refuses --s3-* flags without an s3:// origin, and half a key pair, with a usage error', async () => {
    const dir = await tempDir('ms-s3-usage-')
    const cases: Array<[string[], RegExp]> = [
      [['--origin', dir, '--s3-endpoint', 'http://127.0.0.1:9'], /--s3-\* options apply only to --origin s3:\/\//],
      [['--origin', 's3://models/prod', '--s3-access-key-id', 'AKIAX'], /give both --s3-access-key-id and --s3-secret-access-key-file/],
      [['--origin', 's3://models/prod', '--s3-access-key-id', 'AKIAX', '--s3-secret-access-key-file', `${dir}/missing`], /--s3-secret-access-key-file .*missing/]
    ]
    for (const [args, message] of cases) {
      const p = track(run(['seed', ...args, '--cache-dir', `${dir}/cache`, '--admin', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0']))
      expect(await p.exited, args.join(' ')).toBe(2)
      expect(p.text.join('\n')).toMatch(message)
    }
  })
})
