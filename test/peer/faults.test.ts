/**
 * Faults during a distribution, with real processes on loopback: fetch hosts SIGKILLed at random while the
 * seeder is still pulling, a peer that accepts chunk requests and never answers, and one that answers at a
 * trickle. Every survivor must complete with verified bytes, a restarted host must resume without fetching
 * a verified chunk again, and each test adds what survived to the fault report (test/support/fault-report.ts).
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { SWARM_MSG } from '../../src/peer/swarm-log.ts'
import { SEEDER_MSG } from '../../src/seeder/seeder-log.ts'
import { makeModel, run, seederVersions, startFetch, startSeeder, track, treeDigests, type Proc, type TestModel } from '../support/cli.ts'
import { reportFault } from '../support/fault-report.ts'
import { until } from '../support/poll.ts'
import { heldOnDisk } from '../support/store-state.ts'

const MiB = 1024 * 1024
const CHUNK = MiB

/**
 * Bytes a completed fetch received beyond the chunks it verified in this run (endgame duplicates, requests
 * given up, partial chunks lost). Exact for models a whole number of chunks long, as the ones here.
 */
function refetched (result: Record<string, any>): number {
  return result.stats.bytesDown - (result.bytes - result.resumedChunks * CHUNK)
}

/** Starts a misbehaving peer fixture (it first fetches the model honestly) and waits until it misbehaves. */
async function startFixture (script: string, seeder: { addr: string, peerId: string }, model: TestModel, ready: string): Promise<Proc> {
  const p = track(run([seeder.addr, seeder.peerId, join(model.root, script)], { script: join(import.meta.dirname, 'fixtures', `${script}.ts`) }))
  await p.waitFor(m => m[ready] === true)
  return p
}

describe('faults during distribution', () => {
  it('random hosts SIGKILLed mid-distribution: every survivor completes, a restarted host resumes without refetching', async () => {
    const model = await makeModel(32 * MiB)
    // A slow line keeps the distribution going for several seconds, so the kills land mid-transfer.
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '5MiB/s']))
    await seeder.waitFor(m => m.msg === SEEDER_MSG.versionPublished)
    const { chunks } = (await seederVersions(seeder.admin))[0]!
    const outs = Array.from({ length: 6 }, (_, i) => join(model.root, `host-${i}`))
    const hosts: Proc[] = outs.map(out => track(startFetch(seeder, out, ['--linger', '10m'])))

    // Two victims, drawn at random (printed, so a failure can be replayed by hand); the first is restarted.
    const victims = [0, 1, 2, 3, 4, 5].sort(() => Math.random() - 0.5).slice(0, 2)
    const atKill = new Map<number, number>()
    for (const v of victims) {
      const reached = await until(async () => (await heldOnDisk(outs[v]!, chunks)).count >= 4, 60_000)
      expect(reached, `host-${v} never held 4 chunks`).toBe(true)
      await hosts[v]!.kill('SIGKILL')
      atKill.set(v, (await heldOnDisk(outs[v]!, chunks)).count)
    }
    for (const [v, held] of atKill) expect(held, `host-${v} was complete before its kill`).toBeLessThan(chunks)
    const [restartedIndex, goneIndex] = victims as [number, number]
    const restarted = track(startFetch(seeder, outs[restartedIndex]!, ['--linger', '10m']))

    const survivors = [0, 1, 2, 3, 4, 5].filter(i => !victims.includes(i))
    const results = await Promise.all(survivors.map(i => hosts[i]!.waitFor(m => m.ok === true, 120_000)))
    const resumed = await restarted.waitFor(m => m.ok === true, 120_000)
    const expected = await treeDigests(model.source)
    for (const i of [...survivors, restartedIndex]) expect(await treeDigests(outs[i]!), `host-${i}`).toEqual(expected)
    // Every chunk it held at the kill was kept; it verified and wrote exactly the others (an endgame duplicate,
    // a second copy of a chunk in flight from two peers, is counted apart and never written).
    expect(resumed.resumedChunks).toBe(atKill.get(restartedIndex))
    expect(resumed.stats.chunksDown).toBe(chunks - atKill.get(restartedIndex)!)
    const [v] = await seederVersions(seeder.admin)
    // The kills cost the line nothing: the seeder pulled each byte once.
    expect(v!.bytesPulled).toBe(v!.bytes)

    console.log([
      `faults: SIGKILL of host-${restartedIndex} at ${atKill.get(restartedIndex)}/${chunks} chunks (restarted) and host-${goneIndex} at ${atKill.get(goneIndex)}/${chunks} (gone for good), during a ${(v!.bytes / MiB).toFixed(0)} MiB pull at 5 MiB/s`,
      `survived: ${survivors.length}/${survivors.length} untouched hosts completed (${results.map(r => r.seconds.toFixed(1)).join(' ')} s), outputs verified`,
      `restarted host-${restartedIndex}: resumed ${resumed.resumedChunks} chunks, fetched the other ${resumed.stats.chunksDown} (+${resumed.stats.duplicates} endgame duplicates), output verified`,
      `bytes re-fetched: ${results.reduce((n, r) => n + r.stats.duplicates, resumed.stats.duplicates)} endgame duplicate chunks over all hosts (two copies of a chunk in flight); resumed chunks are never asked for`,
      `line: ${(v!.bytesPulled / v!.bytes).toFixed(2)} x F pulled; seeder egress ${(v!.egressBytes / v!.bytes).toFixed(2)} x F`
    ].join('\n  '))
    await reportFault({
      fault: 'hosts SIGKILLed mid-distribution',
      injected: `SIGKILL of 2 of 6 hosts at ${atKill.get(restartedIndex)} and ${atKill.get(goneIndex)} of ${chunks} chunks during a 5 MiB/s pull, one restarted`,
      hosts: survivors.length + 1,
      completed: results.length + 1,
      verified: survivors.length + 1,
      refetchedBytes: [...results, resumed].reduce((n, r) => n + refetched(r), 0),
      notes: `restarted host resumed ${resumed.resumedChunks} chunks and fetched ${resumed.stats.chunksDown}; seeder pulled ${(v!.bytesPulled / v!.bytes).toFixed(2)} x F`
    })
  })

  it('a peer that accepts requests and never answers is routed around: every host completes', async () => {
    const model = await makeModel(16 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    await seeder.waitFor(m => m.msg === SEEDER_MSG.versionPulled)
    const staller = await startFixture('stalling-peer', seeder, model, 'stallerReady')
    const r = await distributeAround(seeder, model, 3)
    // The hosts did meet the staller (the seeder points newcomers at members holding chunks), or this proves nothing.
    const stalled = staller.stdout.filter(m => typeof m.stalled === 'number')
    expect(stalled.length).toBeGreaterThan(0)
    console.log([
      `faults: 1 stalling peer holding all ${(model.size / MiB).toFixed(1)} MiB, ${stalled.length} requests to it never answered (from ${new Set(stalled.map(m => m.peer)).size} hosts)`,
      ...r.lines
    ].join('\n  '))
    await reportFault({
      fault: 'a stalling peer',
      injected: `a peer holding every chunk that answers ${stalled.length} requests with a head and no bytes`,
      ...r.figures
    })
  })

  it('a peer that answers at a trickle is routed around: every host completes', async () => {
    const model = await makeModel(16 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    await seeder.waitFor(m => m.msg === SEEDER_MSG.versionPulled)
    const trickler = await startFixture('trickling-peer', seeder, model, 'tricklerReady')
    const r = await distributeAround(seeder, model, 3)
    // Requests it served, printed when they ended (the hosts gave them up, or the trickle finished).
    const trickled = await until(async () => trickler.stdout.some(m => typeof m.trickled === 'number'), 10_000)
    expect(trickled, 'no host asked the trickler for a chunk').toBe(true)
    const served = trickler.stdout.filter(m => typeof m.trickled === 'number')
    console.log([
      `faults: 1 trickling peer holding all ${(model.size / MiB).toFixed(1)} MiB at 8 KiB/s; ${served.length} requests to it ended, ` +
        `${(served.reduce((n, m) => n + m.bytes, 0) / 1024).toFixed(0)} KiB trickled, longest held ${(Math.max(...served.map(m => m.ms)) / 1000).toFixed(1)} s`,
      ...r.lines
    ].join('\n  '))
    await reportFault({
      fault: 'a trickling peer',
      injected: `a peer holding every chunk that sends it at 8 KiB/s (${served.length} requests to it)`,
      ...r.figures
    })
  })
})

/**
 * Starts `n` hosts with a misbehaving peer already in the swarm, waits for all of them to complete with
 * output equal to the origin's, and says how long the misbehaving peer held each host up: from the first
 * of its requests the host gave up to when it routed around it (its 'slow peer routed around' log lines).
 */
async function distributeAround (seeder: { addr: string, peerId: string }, model: TestModel, n: number) {
  const started = Date.now()
  const outs = Array.from({ length: n }, (_, i) => join(model.root, `host-${i}`))
  const hosts = outs.map(out => track(startFetch(seeder, out, ['--linger', '10m'])))
  const results = await Promise.all(hosts.map(h => h.waitFor(m => m.ok === true, 110_000)))
  const expected = await treeDigests(model.source)
  for (const out of outs) expect(await treeDigests(out)).toEqual(expected)
  const routed = hosts.map(h => h.stderr.filter(m => m.msg === SWARM_MSG.peerRoutedAround))
  const held = routed.flat().map(m => m.heldMs as number)
  // Routed around by the slow-peer rule (src/peer/slow-peer.ts), not after request timeouts.
  expect(held.length, 'no host routed around the misbehaving peer').toBeGreaterThan(0)
  return {
    lines: [
      `survived: ${results.length}/${n} hosts completed in ${results.map(r => r.seconds.toFixed(1)).join(' ')} s (all done ${((Date.now() - started) / 1000).toFixed(1)} s after start), outputs verified`,
      `routed around: ${routed.map(r => r.length).join(' ')} times by each host (${[...new Set(routed.flat().map(m => m.reason))].join(', ') || 'never'}), ` +
        `after holding requests ${held.length === 0 ? '-' : `${(Math.min(...held) / 1000).toFixed(1)}–${(Math.max(...held) / 1000).toFixed(1)} s`} each time`
    ],
    figures: {
      hosts: n,
      completed: results.length,
      verified: n,
      refetchedBytes: results.reduce((k, r) => k + refetched(r), 0),
      notes: `hosts done in ${results.map(r => r.seconds.toFixed(1)).join(' ')} s; routed around ${routed.map(r => r.length).join(' ')} times, held up ${held.length === 0 ? '-' : `${(Math.min(...held) / 1000).toFixed(1)}–${(Math.max(...held) / 1000).toFixed(1)} s`} each time`
    }
  }
}
