/**
 * `modelswarm status`: the view from snapshots (unit), and the real command against a real seeder while
 * hosts fetch and after one is killed (its reports stop: gone).
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { renderHosts, renderVersions, versionStatuses } from '../../src/cli/status-view.ts'
import type { HostSnapshot, SeederSnapshot } from '../../src/seeder/snapshot.ts'
import { makeModel, run, startFetch, startSeeder, track } from '../support/cli.ts'

const MiB = 1024 * 1024
const host = (id: string, over: Partial<HostSnapshot>): HostSnapshot =>
  ({ id, have: 10, total: 10, bytesDown: 0, bytesUp: 0, rateDown: 0, state: 'seeding', at: 0, ageMs: 1000, ...over })
const line = { origin: 'dir:/o', at: 0, originBytesRead: 0, bytesPulled: 0, bytesRetried: 0, bytesCopied: 0 }

describe('status view', () => {
  it('counts hosts done, fetching, stalled and gone, merges seeders, and computes offload', () => {
    const a: SeederSnapshot = {
      line,
      versions: [{ name: 'm', version: 'v1', headerId: 'h', state: 'ready', chunks: 10, chunksHeld: 10, bytes: 100, bytesPulled: 100, egressBytes: 100, hosts: [
        host('p1', { bytesUp: 300 }),
        host('p2', { state: 'downloading', have: 4, rateDown: 2048 }),
        host('p3', { state: 'stalled', have: 1, reason: 'no neighbours' }),
        host('p4', { ageMs: 31_000 })
      ] }]
    }
    const b: SeederSnapshot = { line, versions: [{ name: 'm', version: 'v1', headerId: 'h', state: 'pulling', chunks: 10, chunksHeld: 3, bytes: 100, bytesPulled: 0, egressBytes: 100, hosts: [host('p4', { ageMs: 500, bytesUp: 100 })] }] }
    const [row] = versionStatuses([a, b])
    expect(row!.hosts.map(h => [h.id, h.status])).toEqual([['p1', 'complete'], ['p2', 'fetching'], ['p3', 'stalled'], ['p4', 'complete']])
    expect(row!.hostsSent / row!.seederSent).toBe(2)
    expect(renderVersions([row!])).toMatch(/m\s+v1\s+100B\s+100%\s+100B\s+2\/1\/1\/0\s+2\.0\s+ready/)
    expect(renderHosts(row!)).toMatch(/stalled .* no neighbours/)
  })
})

describe('modelswarm status', () => {
  it('shows a version\'s hosts as they complete, and a killed host as gone once its reports stop', async () => {
    const model = await makeModel(8 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    const hosts = [0, 1, 2].map(i => track(startFetch(seeder, join(model.root, `h${i}`), ['--linger', '10m'])))
    await Promise.all(hosts.map(h => h.waitFor(m => m.ok === true, 60_000)))
    const admin = seeder.admin.replace('http://', '')
    const status = async (): Promise<Record<string, any>> => {
      const p = run(['status', `${model.name}@${model.version}`, '--seeders', admin, '--json'])
      expect(await p.exited).toBe(0)
      return p.stdout[0]!
    }
    for (let i = 0; i < 50 && (await status()).hosts.filter((h: any) => h.status === 'complete').length < 3; i++) await new Promise(resolve => setTimeout(resolve, 200))
    const before = await status()
    expect(before.hosts.map((h: any) => h.status)).toEqual(['complete', 'complete', 'complete'])
    expect(before.hosts.every((h: any) => typeof h.hostname === 'string' && h.address === '127.0.0.1')).toBe(true)
    await hosts[0]!.kill('SIGKILL')
    let after = before
    for (let i = 0; i < 90 && !after.hosts.some((h: any) => h.status === 'gone'); i++) {
      await new Promise(resolve => setTimeout(resolve, 500))
      after = await status()
    }
    expect(after.hosts.filter((h: any) => h.status === 'gone')).toHaveLength(1)
    const table = run(['status', '--seeders', admin])
    expect(await table.exited).toBe(0)
    expect(table.text.join('\n')).toMatch(new RegExp(`${model.name}\\s+${model.version}\\s+.*2/0/0/1`))
  })
})
