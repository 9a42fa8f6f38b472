/**
 * Rolling the seeder's identity key, as the README's procedure does it, with real processes: hosts trust
 * {old, new}; the seeder restarts on the same cache with the new key and re-signs what it holds; hosts
 * trusting both fetch before and after the switch (the same manifest), a host trusting only the old key is
 * refused after it (exit 4), and one trusting only the new key fetches.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { EXIT } from '../../src/errors.ts'
import { makeModel, run, startSeeder, treeDigests, track, type Proc, type SeederProc } from '../support/cli.ts'
import { SEEDER_MSG } from '../../src/seeder/seeder-log.ts'

/** A fetch trusting exactly `trust` (startFetch also trusts the seeder it bootstraps from). */
function fetchTrusting (seeder: SeederProc, out: string, trust: string[]): Proc {
  return track(run(['fetch', 'it-llm', '--out', out, '--bootstrap', seeder.addr, '--trust', trust.join(','), '--listen', '/ip4/127.0.0.1/tcp/0', '--json', '--timeout', '1m']))
}

async function identity (file: string): Promise<string> {
  const p = track(run(['keygen', '--identity-file', file, '--json']))
  expect(await p.exited).toBe(0)
  return p.stdout[0]!.identity.peerId as string
}

describe('seeder key rotation', () => {
  it('hosts trusting {old, new} fetch across the switch; old-only is refused after it, new-only accepted', async () => {
    const model = await makeModel(3 * 1024 * 1024)
    const oldKey = join(model.root, 'old.key')
    const newKey = join(model.root, 'new.key')
    const oldId = await identity(oldKey)
    const newId = await identity(newKey)
    const both = [oldId, newId]

    const before = track(await startSeeder(model, ['--identity-file', oldKey]))
    expect(before.peerId).toBe(oldId)
    await before.waitFor(m => m.msg === SEEDER_MSG.versionPulled)
    const h1 = fetchTrusting(before, join(model.root, 'h1'), both)
    expect(await h1.exited, h1.text.join('\n')).toBe(0)
    expect(await before.kill('SIGTERM')).toBe(0)

    // Same cache, new key: the seeder re-signs the versions it holds; nothing is pulled again.
    const after = track(await startSeeder(model, ['--identity-file', newKey]))
    expect(after.peerId).toBe(newId)
    await after.waitFor(m => m.msg === SEEDER_MSG.versionPublished)
    const h2 = fetchTrusting(after, join(model.root, 'h2'), both)
    expect(await h2.exited, h2.text.join('\n')).toBe(0)
    const manifests = [h1, h2].map(h => h.stdout.find(m => m.ok === true)!.manifestId)
    expect(manifests[1]).toBe(manifests[0])
    expect(await treeDigests(join(model.root, 'h2'))).toEqual(await treeDigests(model.source))

    // The last step of the roll drops the old key from the hosts' trust: only the new key is needed now.
    const newOnly = fetchTrusting(after, join(model.root, 'h3'), [newId])
    expect(await newOnly.exited, newOnly.text.join('\n')).toBe(0)
    // A host never given the new key refuses what the seeder now signs.
    const oldOnly = fetchTrusting(after, join(model.root, 'h4'), [oldId])
    expect(await oldOnly.exited).toBe(EXIT.integrity)
    expect(oldOnly.text.join('\n')).toMatch(new RegExp(`signed by ${newId}, which is not a trusted seeder key`))
    const published = after.stderr.find(m => m.msg === SEEDER_MSG.versionPublished)!
    expect(published.resumed).toBe(published.chunks)
  })
})
