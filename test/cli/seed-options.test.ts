import { describe, expect, it } from 'vitest'
import { Command } from 'commander'
import { option } from '../../src/cli/options.ts'

const parse = (args: string[]): Record<string, unknown> => {
  const c = new Command().exitOverride().configureOutput({ writeErr: () => {} })
  for (const name of ['hdfs', 'hdfsRoot', 'listen', 'pin', 'cacheCapacity', 'keepVersions', 'inUseWindow'] as const) c.addOption(option(name))
  return c.parse(['node', 'modelswarm', ...args]).opts()
}

describe('seed options', () => {
  it('a repeatable flag replaces its default instead of extending it', () => {
    expect(parse([])).toMatchObject({ hdfsRoot: ['/models'], listen: ['/ip4/0.0.0.0/tcp/0'], inUseWindow: 60_000 })
    expect(parse(['--hdfs-root', '/a', '--hdfs-root', '/b,/c']).hdfsRoot).toEqual(['/a', '/b', '/c'])
    expect(parse(['--listen', '/ip4/127.0.0.1/tcp/0']).listen).toEqual(['/ip4/127.0.0.1/tcp/0'])
  })

  it('parses NameNode lists, pins, capacity and retention', () => {
    expect(parse(['--hdfs', 'http://nn1:9870,http://nn2:9870', '--pin', 'qa@v1,qa@v2', '--cache-capacity', '2TiB', '--keep-versions', '3'])).toMatchObject({
      hdfs: ['http://nn1:9870', 'http://nn2:9870'],
      pin: [{ name: 'qa', version: 'v1' }, { name: 'qa', version: 'v2' }],
      cacheCapacity: 2 * 1024 ** 4,
      keepVersions: 3
    })
    expect(() => parse(['--pin', 'qa'])).toThrow(/NAME@VERSION/)
    expect(() => parse(['--keep-versions', '0'])).toThrow(/positive integer/)
  })
})
