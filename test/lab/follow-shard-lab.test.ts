// Two hosts in real network namespaces: following the latest version, they switch to one newly published at
// the MiniDFSCluster origin; then, with the model in 10 shards, a reader on each host gets the first shard
// through the host's gateway while the gateway fetches the whole model. Needs root (CI runs as root).
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { summarizeShard } from '../../src/lab/metrics.ts'
import type { LabOutcome } from '../../src/lab/run-lab.ts'
import { MIB, runSmallLab, type SmallLab } from './small-lab.ts'

const F = 10 * MIB

describe('network lab: follow and the first shard, N = 2', () => {
  let lab: SmallLab
  let outcome: LabOutcome

  beforeAll(async () => {
    // At debug the gateways log each chunk request, which the shard report sums up.
    lab = await runSmallLab({ hosts: 2, size: F, scenarios: ['follow', 'shard'], baselines: [], logLevel: 'debug' })
    outcome = lab.outcome
  }, 170_000)

  afterAll(async () => { await lab?.remove() })

  it('every following host switches current to the new version, whose bytes it holds, after the seeder and then the host noticed it', () => {
    const follow = outcome.runs.find(r => r.scenario === 'follow')!
    expect(follow.hosts).toHaveLength(2)
    expect(follow.follow!.seederNoticedMs).toBeGreaterThanOrEqual(0)
    for (const h of follow.hosts) {
      expect(h.verified, h.host).toBe(true)
      expect(h.noticedMs, h.host).toBeGreaterThanOrEqual(follow.follow!.seederNoticedMs!)
      expect(h.doneMs, h.host).toBeGreaterThan(h.noticedMs!)
    }
    // Every byte of the new version differs from the first: one whole copy crosses the line for it.
    expect(follow.lineBytes).toBeGreaterThanOrEqual(F)
    expect(follow.lineBytes).toBeLessThan(F * 1.06)
  })

  it('each reader gets the first shard, with the origin\'s bytes, and the gateway goes on to verify the whole model', () => {
    const shard = outcome.runs.find(r => r.scenario === 'shard')!
    expect(shard.shards).toBe(10)
    for (const h of shard.hosts) {
      expect(h.firstShardMs, h.host).toBeGreaterThan(0)
      // The reader's ask by its own clock (its exit less curl's time_total) falls between its spawn and its exit.
      expect(h.startedMs, h.host).toBeGreaterThanOrEqual(h.spawnedMs!)
      expect(h.startedMs, h.host).toBeLessThan(h.firstShardMs!)
      expect(h.doneMs, h.host).toBeGreaterThan(0)
      expect(h.verified, h.host).toBe(true)
    }
    const s = summarizeShard(shard)!
    expect(s.ratios.every(r => r !== undefined && r > 0)).toBe(true)
    expect(s.fromSpawn.ratios.every(r => r !== undefined && r > 0)).toBe(true)
    // The readers waited on the first shard's chunks: the gateways' debug logs say how their requests went.
    const note = shard.notes!.find(n => n.startsWith('urgent chunk requests'))
    expect(note).toMatch(/^urgent chunk requests \(the hosts' debug logs\): \d+, \d+ delivered, \d+ aborted .*time to the first byte p50 \d+\.\d\d s/)
    expect(Number(/, (\d+) delivered/.exec(note!)![1])).toBeGreaterThan(0)
  })

  it('reports both headlines and tears the namespaces down', async () => {
    const md = await readFile(outcome.reportPath, 'utf8')
    expect(md).toContain('| modelswarm follow | 2/2 | yes |')
    expect(md).toContain('| modelswarm shard | 2/2 | yes |')
    expect(outcome.ratios.some(r => r.startsWith('modelswarm follow: publish → last host switched'))).toBe(true)
    expect(outcome.ratios.some(r => r.startsWith('modelswarm shard: first shard ÷ whole model verified'))).toBe(true)
    expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(`msl-${process.pid}-`)
  })
})
