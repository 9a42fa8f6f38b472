/**
 * Members only, with real processes: a seeder in a private swarm (swarm key) or behind an allow-list;
 * outsiders run the real `modelswarm fetch` and are turned away with exit 8 and a clear message while the
 * seeder logs each refusal; members fetch. The bulk endpoint and the DHT turn outsiders away too.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import tls from 'node:tls'
import { writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { EXIT } from '../../src/errors.ts'
import { MEMBERSHIP_MSG } from '../../src/peer/membership.ts'
import { loadSwarmKey } from '../../src/peer/swarm-key.ts'
import { SWARM_MSG } from '../../src/peer/swarm-log.ts'
import { BULK_TLS } from '../../src/peer/protocols/chunk/bulk-tls.ts'
import { makeModel, run, seederVersions, startFetch, startSeeder, treeDigests, track, type Proc, type SeederProc } from '../support/cli.ts'
import { dhtLookup } from '../support/dht-lookup.ts'
import { freePort } from '../support/free-port.ts'

/** `modelswarm keygen` as a user runs it; its JSON answer. */
async function keygen (args: string[]): Promise<Record<string, any>> {
  const p = track(run(['keygen', ...args, '--json']))
  expect(await p.exited).toBe(0)
  return p.stdout[0]!
}

function refusals (seeder: Proc): Array<Record<string, any>> {
  return seeder.stderr.filter(m => m.msg === MEMBERSHIP_MSG.refused)
}

async function expectRefused (f: Proc, seeder: SeederProc, message: RegExp, logged: (m: Record<string, any>) => boolean): Promise<void> {
  expect(await f.exited, f.text.join('\n')).toBe(EXIT.refused)
  expect(f.text.join('\n')).toMatch(/every seeder refused this host/)
  expect(f.text.join('\n')).toMatch(message)
  expect(f.text.join('\n')).toMatch(/hint: give this host the swarm's key/)
  await seeder.waitFor(m => m.msg === MEMBERSHIP_MSG.refused && logged(m), 10_000)
}

describe('a private swarm (swarm key)', () => {
  it('an outsider without the key, or with another, is refused and the seeder logs it; a member fetches', async () => {
    const model = await makeModel(6 * 1024 * 1024)
    const key = join(model.root, 'swarm.key')
    const otherKey = join(model.root, 'other.key')
    const made = await keygen(['--swarm-key-file', key])
    const other = await keygen(['--swarm-key-file', otherKey])
    expect(made.swarmKey.fingerprint).not.toBe(other.swarmKey.fingerprint)
    const bulkPort = await freePort()
    const seeder = track(await startSeeder(model, ['--swarm-key-file', key, '--bulk-port', String(bulkPort)]))
    await seeder.waitFor(m => m.msg === 'version pulled')
    expect((await seeder.waitFor(m => m.msg === 'seeder started')).swarmKey).toBe(made.swarmKey.fingerprint)

    const noKey = track(startFetch(seeder, join(model.root, 'no-key'), ['--timeout', '2m']))
    await expectRefused(noKey, seeder, /lacks its swarm key/, m => /no swarm key or another one/.test(m.reason))
    const wrongKey = track(startFetch(seeder, join(model.root, 'wrong-key'), ['--timeout', '2m', '--swarm-key-file', otherKey]))
    await expectRefused(wrongKey, seeder, /lacks its swarm key/, m => /no swarm key or another one/.test(m.reason))
    expect(refusals(seeder).every(m => m.remote === '127.0.0.1')).toBe(true)
    // Nor over the bulk path: its keys are granted only over a libp2p session, which outsiders never get.
    await expect(bulkHandshake(bulkPort)).rejects.toThrow()
    // Nor the DHT: a node without the key finds no provider through the seeder; one with it does.
    const { headerId } = (await seederVersions(seeder.admin))[0]!
    expect(await dhtLookup(seeder, headerId as string, undefined)).toEqual({ dialed: false, providers: [] })
    expect(await dhtLookup(seeder, headerId as string, await loadSwarmKey(key))).toEqual({ dialed: true, providers: [seeder.peerId] })

    // Two members: the second also trades with the first, so member-to-member links pass the key too.
    const outA = join(model.root, 'a')
    const outB = join(model.root, 'b')
    const a = track(startFetch(seeder, outA, ['--swarm-key-file', key, '--linger', '20s']))
    const b = track(startFetch(seeder, outB, ['--swarm-key-file', key]))
    expect(await b.exited, b.text.join('\n')).toBe(0)
    await a.waitFor(m => m.ok === true)
    expect(await treeDigests(outA)).toEqual(await treeDigests(model.source))
    expect(await treeDigests(outB)).toEqual(await treeDigests(model.source))
    // The bulk path still works in a private swarm (its grants travel over the protected session).
    expect(b.stdout.find(m => m.ok === true)!.stats.bytesDown).toBeGreaterThan(0)
    expect([...a.stderr, ...b.stderr].filter(m => m.msg === SWARM_MSG.bulkUnreachable)).toEqual([])
  })

  it('a malformed key file stops seed and fetch at once with exit 2 naming the fix', async () => {
    const model = await makeModel(1024)
    const bad = join(model.root, 'bad.key')
    await writeFile(bad, '/key/swarm/psk/1.0.0/\n/base16/\nabcd\n')
    const seeder = track(run(['seed', '--origin', model.origin, '--cache-dir', join(model.root, 's'), '--swarm-key-file', bad]))
    expect(await seeder.exited).toBe(EXIT.usage)
    expect(seeder.text.join('\n')).toMatch(/the key is 2 bytes, not 32/)
    expect(seeder.text.join('\n')).toMatch(/modelswarm keygen --swarm-key-file/)
    const f = track(startFetch({ addr: '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWFuzjb3G5476Z626JRY9eQJVweb71AjMvv6bFRbgB88xn', peerId: '12D3KooWFuzjb3G5476Z626JRY9eQJVweb71AjMvv6bFRbgB88xn' }, join(model.root, 'o'), ['--swarm-key-file', join(model.root, 'missing.key')]))
    expect(await f.exited).toBe(EXIT.usage)
    expect(f.text.join('\n')).toMatch(/missing\.key: ENOENT/)
  })
})

describe('an allow-list', () => {
  it('--allow-peers: a host whose identity is not listed is refused and logged by peer id; a listed one fetches', async () => {
    const model = await makeModel(4 * 1024 * 1024)
    const member = await keygen(['--identity-file', join(model.root, 'member.key')])
    const outsider = await keygen(['--identity-file', join(model.root, 'outsider.key')])
    const seeder = track(await startSeeder(model, ['--allow-peers', member.identity.peerId]))
    await seeder.waitFor(m => m.msg === 'version pulled')

    const out = track(startFetch(seeder, join(model.root, 'out-x'), ['--timeout', '2m', '--identity-file', join(model.root, 'outsider.key')]))
    await expectRefused(out, seeder, /not in its --allow-peers/, m => m.peer === outsider.identity.peerId)
    const anonymous = track(startFetch(seeder, join(model.root, 'out-y'), ['--timeout', '2m']))
    expect(await anonymous.exited).toBe(EXIT.refused)
    // Nor can an unlisted node use the seeder's DHT.
    const { headerId } = (await seederVersions(seeder.admin))[0]!
    expect((await dhtLookup(seeder, headerId as string, undefined)).providers).toEqual([])

    const ok = track(startFetch(seeder, join(model.root, 'ok'), ['--identity-file', join(model.root, 'member.key')]))
    expect(await ok.exited, ok.text.join('\n')).toBe(0)
    expect(await treeDigests(join(model.root, 'ok'))).toEqual(await treeDigests(model.source))
    expect(refusals(seeder).some(m => m.peer === member.identity.peerId)).toBe(false)
  })

  it('--allow-cidr: a host outside the ranges is refused at the TCP connection (libp2p and bulk); inside, it fetches', async () => {
    const model = await makeModel(4 * 1024 * 1024)
    // Every test process connects from 127.0.0.1 (the loopback route's source address).
    const bulkPort = await freePort()
    const closed = track(await startSeeder(model, ['--allow-cidr', '127.0.0.2/32,10.0.0.0/8', '--bulk-port', String(bulkPort)]))
    await closed.waitFor(m => m.msg === 'version pulled')
    const out = track(startFetch(closed, join(model.root, 'x'), ['--timeout', '2m']))
    await expectRefused(out, closed, /or is outside its --allow-cidr/, m => m.reason === 'its address is outside --allow-cidr' && m.remote === '127.0.0.1')
    // The bulk endpoint: a TLS client is dropped before its handshake, whatever PSK it offers.
    await expect(bulkHandshake(bulkPort)).rejects.toThrow()
    await closed.waitFor(m => m.msg === MEMBERSHIP_MSG.refused && /bulk endpoint/.test(m.reason as string), 10_000)
    const { headerId } = (await seederVersions(closed.admin))[0]!
    expect(await dhtLookup(closed, headerId as string, undefined)).toEqual({ dialed: false, providers: [] })
    await closed.kill()

    const open = track(await startSeeder({ ...model, root: join(model.root, 'open') }, ['--allow-cidr', '127.0.0.0/8']))
    const ok = track(startFetch(open, join(model.root, 'ok'), ['--allow-cidr', '127.0.0.0/8']))
    expect(await ok.exited, ok.text.join('\n')).toBe(0)
    expect(refusals(open)).toEqual([])
  })
})

/** A TLS-PSK handshake with a made-up identity and key: what an outsider who found the bulk port can try. */
async function bulkHandshake (port: number): Promise<void> {
  const socket = tls.connect({ host: '127.0.0.1', port, ...BULK_TLS, pskCallback: () => ({ psk: Buffer.alloc(32, 7), identity: 'guess' }), checkServerIdentity: () => undefined })
  try {
    await once(socket, 'secureConnect')
  } finally {
    socket.destroy()
  }
}
