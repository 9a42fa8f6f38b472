/**
 * `modelswarm status`: the view from snapshots (unit), and the real command against a real seeder with
 * eight hosts, after one is killed (reports stop, connection closed: gone) and one frozen with SIGSTOP
 * (reports stop, pings unanswered: stalled, with that reason).
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { renderHosts, renderVersions, versionStatuses } from '../../src/cli/status-view.ts'
import { hostState } from '../../src/seeder/host-state.ts'
import type { HostSnapshot, SeederSnapshot } from '../../src/seeder/snapshot.ts'
import { makeModel, run, startFetch, startSeeder, track } from '../support/cli.ts'

const MiB = 1024 * 1024
const host = (id: string, over: Partial<HostSnapshot>): HostSnapshot =>
  ({ id, have: 10, total: 10, bytesDown: 0, bytesUp: 0, rateDown: 0, state: 'seeding', at: 0, ageMs: 1000, connection: 'open', ...over })
const line = { origin: 'dir:/o', at: 0, originBytesRead: 0, bytesPulled: 0, bytesRetried: 0, bytesCopied: 0 }

describe('status view', () => {
  it('counts hosts done, fetching, stalled and gone, merges seeders, and computes offload', () => {
    const a: SeederSnapshot = {
      line,
      versions: [{ name: 'm', version: 'v1', headerId: 'h', state: 'ready', chunks: 10, chunksHeld: 10, bytes: 100, bytesPulled: 100, egressBytes: 100, hosts: [
        host('p1', { bytesUp: 300 }),
        host('p2', { state: 'downloading', have: 4, rateDown: 2048 }),
        host('p3', { state: 'stalled', have: 1, reason: 'no neighbours' }),
        host('p4', { ageMs: 31_000, connection: 'closed' })
      ] }]
    }
    const b: SeederSnapshot = { line, versions: [{ name: 'm', version: 'v1', headerId: 'h', state: 'pulling', chunks: 10, chunksHeld: 3, bytes: 100, bytesPulled: 0, egressBytes: 100, hosts: [host('p4', { ageMs: 500, bytesUp: 100 })] }] }
    const [row] = versionStatuses([a, b])
    expect(row!.hosts.map(h => [h.id, h.status])).toEqual([['p1', 'complete'], ['p2', 'fetching'], ['p3', 'stalled'], ['p4', 'complete']])
    expect(row!.hostsSent / row!.seederSent).toBe(2)
    expect(renderVersions([row!])).toMatch(/m\s+v1\s+100B\s+100%\s+100B\s+2\/1\/1\/0\s+2\.0\s+ready/)
    expect(renderHosts(row!)).toMatch(/stalled .* no neighbours/)
  })

  it('a host that stops reporting is gone once its connection closed, stalled while it is open or stopped answering', () => {
    expect(hostState(host('p', { state: 'downloading', ageMs: 29_000, connection: 'closed' }))).toEqual({ state: 'fetching' })
    expect(hostState(host('p', { ageMs: 31_000, connection: 'closed' }))).toEqual({ state: 'gone' })
    // A seeder from before the connection was reported.
    expect(hostState(host('p', { ageMs: 31_000, connection: undefined }))).toEqual({ state: 'gone' })
    expect(hostState(host('p', { ageMs: 31_000, connection: 'open' }))).toEqual({ state: 'stalled', reason: 'no report for 31 s; its connection is still open' })
    expect(hostState(host('p', { ageMs: 45_000, connection: 'unresponsive' }))).toEqual({ state: 'stalled', reason: expect.stringMatching(/^no report for 45 s; it stopped answering pings/) })
    expect(hostState(host('p', { ageMs: 11 * 60_000, connection: 'unresponsive' }))).toEqual({ state: 'gone' })
  })
})

describe('modelswarm status', () => {
  it('counts eight hosts as they complete, then a killed host as gone and a frozen one as stalled', async () => {
    const model = await makeModel(8 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    const hosts = Array.from({ length: 8 }, (_, i) => track(startFetch(seeder, join(model.root, `h${i}`), ['--linger', '10m'])))
    await Promise.all(hosts.map(h => h.waitFor(m => m.ok === true, 90_000)))
    const admin = seeder.admin.replace('http://', '')
    const status = async (): Promise<Record<string, any>> => {
      const p = run(['status', `${model.name}@${model.version}`, '--seeders', admin, '--json'])
      expect(await p.exited).toBe(0)
      return p.stdout[0]!
    }
    const table = async (): Promise<string> => {
      const p = run(['status', '--seeders', admin])
      expect(await p.exited).toBe(0)
      return p.text.join('\n')
    }
    let before = await status()
    for (let i = 0; i < 50 && before.hosts.filter((h: any) => h.status === 'complete').length < 8; i++) {
      await new Promise(resolve => setTimeout(resolve, 200))
      before = await status()
    }
    expect(before.hosts.map((h: any) => h.status)).toEqual(Array(8).fill('complete'))
    expect(before.hosts.every((h: any) => typeof h.hostname === 'string' && h.address === '127.0.0.1' && h.connection === 'open')).toBe(true)
    expect(await table()).toMatch(new RegExp(`${model.name}\\s+${model.version}\\s+.*8/0/0/0`))

    // The ids come from each host's own log (its peer id), so the test knows which row is which.
    const idOf = async (i: number): Promise<string> => (await hosts[i]!.waitFor(m => typeof m.peer === 'string' && m.component === 'fetch')).peer as string
    const killed = await idOf(0)
    const frozen = await idOf(1)
    await hosts[0]!.kill('SIGKILL')
    hosts[1]!.proc.kill('SIGSTOP')
    let after = before
    const stateOf = (id: string): string | undefined => after.hosts.find((h: any) => h.id === id)?.status
    for (let i = 0; i < 120 && !(stateOf(killed) === 'gone' && stateOf(frozen) === 'stalled'); i++) {
      await new Promise(resolve => setTimeout(resolve, 500))
      after = await status()
    }
    expect(after.hosts.find((h: any) => h.id === killed)).toMatchObject({ status: 'gone', connection: 'closed' })
    expect(after.hosts.find((h: any) => h.id === frozen)).toMatchObject({ status: 'stalled', connection: 'unresponsive', reason: expect.stringMatching(/stopped answering pings/) })
    expect(after.hosts.filter((h: any) => h.status === 'complete')).toHaveLength(6)
    expect(await table()).toMatch(new RegExp(`${model.name}\\s+${model.version}\\s+.*6/0/1/1`))
  })
})
