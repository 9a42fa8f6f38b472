// Four hosts in real network namespaces fetch a model from a seeder that pulled it from a MiniDFSCluster
// across the shaped line; both baselines run on the same network. Needs root (CI runs as root); a missing
// tool fails the setup with the command that installs it.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LabOutcome } from '../../src/lab/run-lab.ts'
import { MIB, runSmallLab, type SmallLab } from './small-lab.ts'
import { checkLibtorrent } from '../../src/lab/torrent-run.ts'

const F = 20 * MIB

/** Kernel counters include Ethernet/IP/TCP headers (a few %), never less than the payload. */
function expectOneCopy (bytes: number, copies: number): void {
  expect(bytes).toBeGreaterThanOrEqual(copies * F)
  expect(bytes).toBeLessThan(copies * F * 1.06)
}

describe('network lab, N = 4', () => {
  let lab: SmallLab
  let dir: string
  let outcome: LabOutcome

  beforeAll(async () => {
    await checkLibtorrent()
    lab = await runSmallLab({ hosts: 4, size: F, scenarios: ['warm'], baselines: ['direct', 'bittorrent'] })
    dir = lab.dir
    outcome = lab.outcome
  }, 170_000)

  afterAll(async () => { await lab?.remove() })

  it('every host completes with outputs identical to the origin, in modelswarm and both baselines', () => {
    expect(outcome.runs.map(r => r.system)).toEqual(['modelswarm', 'direct', 'bittorrent'])
    for (const run of outcome.runs) {
      expect(run.hosts).toHaveLength(4)
      for (const h of run.hosts) {
        expect(h.doneMs, `${run.system} ${h.host}`).toBeGreaterThan(0)
        expect(h.verified, `${run.system} ${h.host}`).toBe(true)
      }
    }
  })

  it('the swarm takes one copy of the model over the line, the direct baseline one per host', () => {
    const [swarm, direct, torrent] = outcome.runs
    expectOneCopy(swarm!.lineBytes, 1)
    expectOneCopy(direct!.lineBytes, 4)
    expectOneCopy(torrent!.lineBytes, 1)
    // Hosts exchanged bytes: the seeder's NIC sent less than one copy per host.
    expect(swarm!.seederEgress).toBeGreaterThanOrEqual(F)
    expect(swarm!.seederEgress).toBeLessThan(4 * F)
  })

  it('writes the report and tears the namespaces down', async () => {
    const md = await readFile(outcome.reportPath, 'utf8')
    for (const label of ['modelswarm warm', 'direct', 'bittorrent']) expect(md).toContain(`| ${label} | 4/4 | yes |`)
    // Upload use in tenths of each run: the hosts of modelswarm's and BitTorrent's runs sent bytes.
    expect(md.match(/^\| span \(s\) \|/gm)).toHaveLength(3)
    const swarmUse = md.slice(md.indexOf('## modelswarm warm')).split('\n').filter(l => /^\| [\d.]+–[\d.]+ \|/.test(l))
    expect(swarmUse.slice(0, 10).some(l => Number(l.split('|')[2]) > 0.1)).toBe(true)
    expect(outcome.ratios.some(r => r.startsWith('modelswarm warm ÷ bittorrent'))).toBe(true)
    expect(existsSync(join(dir, 'results.json'))).toBe(true)
    // The box's speed beside the run: runs compare only at similar speeds.
    expect(md).toMatch(/SHA-256 on one core: \d+\.\d\d GiB\/s before the lab, \d+\.\d\d after/)
    const left = execFileSync('ip', ['netns', 'list']).toString()
    expect(left).not.toContain(`msl-${process.pid}-`)
  })
})
