/**
 * The swarm's user stories, each with real processes on loopback: a `modelswarm seed` daemon and
 * `modelswarm fetch` processes, talking libp2p (TCP + Noise + yamux) to each other.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { heldOnDisk } from '../support/store-state.ts'
import { until } from '../support/poll.ts'
import { makeModel, run, seederVersions, startFetch, startSeeder, track, treeDigests } from '../support/cli.ts'

const MiB = 1024 * 1024

describe('swarm', () => {
  it('eight hosts fetch one model; outputs are byte-identical and the seeder sends far less than 8 copies', async () => {
    const model = await makeModel(48 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    const hosts = Array.from({ length: 8 }, (_, i) => track(startFetch(seeder, join(model.root, `host-${i}`), ['--linger', '10m'])))
    const results = await Promise.all(hosts.map(h => h.waitFor(m => m.ok === true, 90_000)))
    const [v] = await seederVersions(seeder.admin)
    const expected = await treeDigests(model.source)
    for (let i = 0; i < hosts.length; i++) expect(await treeDigests(join(model.root, `host-${i}`))).toEqual(expected)
    const ratio = v!.egressBytes / v!.bytes
    console.log(`8 hosts, ${(v!.bytes / MiB).toFixed(0)} MiB: seeder egress ${ratio.toFixed(2)}×F, origin reads ${(v!.bytesPulled / v!.bytes).toFixed(2)}×F, host times ${results.map(r => r.seconds.toFixed(1)).join(' ')} s`)
    expect(v!.bytesPulled).toBe(v!.bytes)
    expect(ratio).toBeLessThan(2)
    // Every host's report reached the seeder, so an operator sees who holds what.
    expect(v!.hosts.length).toBeGreaterThanOrEqual(8)
  })

  it('hosts that start while the seeder is still pulling from a slow origin complete', async () => {
    const model = await makeModel(24 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '6MiB/s']))
    await seeder.waitFor(m => m.msg === 'version published')
    const hosts = Array.from({ length: 3 }, (_, i) => track(startFetch(seeder, join(model.root, `host-${i}`), ['--linger', '10m'])))
    const [during] = await seederVersions(seeder.admin)
    expect(during!.state).toBe('pulling')
    expect(during!.chunksHeld).toBeLessThan(during!.chunks)
    const results = await Promise.all(hosts.map(h => h.waitFor(m => m.ok === true, 90_000)))
    const pulled = await seeder.waitFor(m => m.msg === 'version pulled')
    const expected = await treeDigests(model.source)
    for (let i = 0; i < hosts.length; i++) expect(await treeDigests(join(model.root, `host-${i}`))).toEqual(expected)
    const decisions = (await seederVersions(seeder.admin))[0]!.uploadDecisions!
    console.log(`pull took ${pulled.seconds} s at 6 MiB/s; hosts finished after ${results.map(r => r.seconds.toFixed(1)).join(' ')} s; upload gate ${JSON.stringify(decisions)}`)
  })

  it('a peer serving corrupt chunks is banned and the chunks are fetched elsewhere', async () => {
    const model = await makeModel(16 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    const evil = track(run([seeder.addr, seeder.peerId, join(model.root, 'evil')], { script: join(import.meta.dirname, 'fixtures', 'evil-peer.ts') }))
    await evil.waitFor(m => m.evilReady === true)
    const hosts = Array.from({ length: 3 }, (_, i) => track(startFetch(seeder, join(model.root, `host-${i}`), ['--linger', '10m', '--log-level', 'warn'])))
    const results = await Promise.all(hosts.map(h => h.waitFor(m => m.ok === true, 90_000)))
    const expected = await treeDigests(model.source)
    for (let i = 0; i < hosts.length; i++) expect(await treeDigests(join(model.root, `host-${i}`))).toEqual(expected)
    // At least one host met the liar, logged the ban and still finished with correct bytes.
    const bans = hosts.flatMap(h => h.stderr.filter(m => m.msg === 'peer banned for this session'))
    expect(bans.length).toBeGreaterThan(0)
    expect(results.some(r => r.stats.rejected > 0)).toBe(true)
    const evilId = bans[0]!.peer
    for (const r of results) expect(r.stats.banned.every((b: string) => b === evilId)).toBe(true)
  })

  it('a fetch killed with SIGKILL resumes without downloading any verified chunk again', async () => {
    const model = await makeModel(32 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '8MiB/s']))
    await seeder.waitFor(m => m.msg === 'version published')
    const { chunks } = (await seederVersions(seeder.admin))[0]!
    const out = join(model.root, 'host')
    const first = track(startFetch(seeder, out))
    // Kill once some but not all chunks are verified on disk.
    await until(async () => (await heldOnDisk(out, chunks)).count >= 8, 30_000)
    await first.kill('SIGKILL')
    const atKill = (await heldOnDisk(out, chunks)).count
    expect(atKill).toBeGreaterThanOrEqual(8)
    expect(atKill).toBeLessThan(chunks)
    const second = track(startFetch(seeder, out))
    const result = await second.waitFor(m => m.ok === true, 90_000)
    expect(result.resumedChunks).toBe(atKill)
    expect(result.stats.chunksDown).toBe(chunks - atKill)
    expect(await treeDigests(out)).toEqual(await treeDigests(model.source))
    console.log(`killed with ${atKill}/${chunks} chunks verified; the restart fetched ${result.stats.chunksDown}`)
  })

  it('metadata signed by an untrusted key, or with a broken signature, is refused with a clear error', async () => {
    const model = await makeModel(4 * MiB)
    const trusted = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    const impostor = track(await startSeeder({ ...model, root: join(model.root, 'impostor') }, ['--chunk-size', '1MiB']))
    const wrongKey = track(startFetch({ addr: impostor.addr, peerId: trusted.peerId }, join(model.root, 'a')))
    expect(await wrongKey.exited).toBe(4)
    expect(wrongKey.text.join('\n')).toMatch(/not a trusted seeder key/)

    const tamperer = track(run([model.origin, join(model.root, 'tamperer')], { script: join(import.meta.dirname, 'fixtures', 'tampering-seeder.ts') }))
    const t = await tamperer.waitFor(m => typeof m.peerId === 'string')
    const tampered = track(startFetch({ addr: t.addrs[0], peerId: t.peerId }, join(model.root, 'b')))
    expect(await tampered.exited).toBe(4)
    expect(tampered.text.join('\n')).toMatch(/signature does not verify/)
  })

  it('an unknown model ends with the not-found status and a hint', async () => {
    const model = await makeModel(1 * MiB)
    const seeder = track(await startSeeder(model))
    await seeder.waitFor(m => m.msg === 'version published')
    const f = track(startFetch(seeder, join(model.root, 'x'), [], 'no-such-model'))
    expect(await f.exited).toBe(3)
    expect(f.text.join('\n')).toMatch(/no-such-model@latest not found/)
  })

  it('a version whose marker was written after the seeder last listed the origin is found when asked for by name', async () => {
    // Before, the seeder answered 'not found' until its next poll (every 5 s by default), and a host asking by
    // name took three such answers in ~2 s as final: exit 3 for a version that was there (the lab's cold start).
    const model = await makeModel(1 * MiB, { publish: false })
    const seeder = track(await startSeeder(model, ['--poll-interval', '1h']))
    await writeFile(join(model.source, '_SUCCESS'), '')
    const f = track(startFetch(seeder, join(model.root, 'x'), [], `${model.name}@${model.version}`))
    expect(await f.exited, f.text.slice(-3).join('\n')).toBe(0)
    expect(await treeDigests(join(model.root, 'x'))).toEqual(await treeDigests(model.source))
  })
})
