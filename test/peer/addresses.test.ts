/**
 * Addresses, with real processes: a seeder listening on IPv4 and IPv6 serves the bulk path on both (a
 * fetch over IPv6 used to fall back to libp2p streams: `ECONNREFUSED ::1:<bulk port>`), on the port
 * `--bulk-port` fixes, so a firewall that opens known ports keeps the fast path; and a firewall that drops
 * the bulk port (iptables in a network namespace of its own, root as CI) costs the fast path, not the fetch;
 * hosts listening on one address of several are dialed there, not at the source address of their connections.
 */
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { connect } from 'node:net'
import { join } from 'node:path'
import { makeModel, run, startFetch, track, treeDigests } from '../support/cli.ts'
import { BULK_CONNECT_TIMEOUT_MS } from '../../src/peer/protocols/chunk/bulk-tls.ts'
import { SWARM_MSG } from '../../src/peer/swarm-log.ts'
import { freePort } from '../support/free-port.ts'

const MiB = 1024 * 1024

const reachable = (host: string, port: number): Promise<boolean> => new Promise(resolve => {
  const s = connect({ host, port }, () => { s.destroy(); resolve(true) })
  s.on('error', () => resolve(false))
})

describe('addresses', () => {
  it('a seeder on IPv4 and IPv6 serves the bulk path on both, on the fixed --bulk-port; a fetch over IPv6 keeps the fast path', async () => {
    const model = await makeModel(8 * MiB)
    const bulkPort = await freePort()
    const seeder = track(run(['--log-level', 'info', 'seed', '--origin', model.origin, '--cache-dir', join(model.root, 'seeder'), '--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip6/::1/tcp/0',
      '--bulk-port', String(bulkPort), '--admin', '127.0.0.1:0', '--chunk-size', '1MiB', '--json']))
    const info = await seeder.waitFor(m => typeof m.peerId === 'string', 30_000)
    expect(await reachable('127.0.0.1', bulkPort)).toBe(true)
    expect(await reachable('::1', bulkPort)).toBe(true)
    const v6 = (info.addrs as string[]).find(a => a.startsWith('/ip6/::1/'))!
    const out = join(model.root, 'host')
    const f = track(startFetch({ addr: v6, peerId: info.peerId as string }, out, ['--listen', '/ip6/::1/tcp/0']))
    expect(await f.exited).toBe(0)
    expect(await treeDigests(out)).toEqual(await treeDigests(model.source))
    expect(f.stderr.filter(m => m.msg === SWARM_MSG.bulkUnreachable)).toEqual([])
  })

  it('hosts listening on one address of several reach each other\'s bulk endpoints there, not at the address their connections come from', async () => {
    const model = await makeModel(16 * MiB)
    const seeder = track(run(['--log-level', 'info', 'seed', '--origin', model.origin, '--cache-dir', join(model.root, 'seeder'), '--listen', '/ip4/127.0.0.1/tcp/0',
      '--admin', '127.0.0.1:0', '--chunk-size', '1MiB', '--json']))
    const info = await seeder.waitFor(m => typeof m.peerId === 'string', 30_000)
    // Each host listens on an address of its own; its outbound connections come from 127.0.0.1, where its
    // bulk endpoint does not listen.
    const hosts = [2, 3, 4].map(i => track(run(['--log-level', 'info', 'fetch', 'it-llm', '--out', join(model.root, `host-${i}`), '--bootstrap', info.addrs[0] as string,
      '--trust', info.peerId as string, '--listen', `/ip4/127.0.0.${i}/tcp/0`, '--linger', '3s', '--json'])))
    for (const h of hosts) expect(await h.exited).toBe(0)
    const expected = await treeDigests(model.source)
    for (const i of [2, 3, 4]) expect(await treeDigests(join(model.root, `host-${i}`))).toEqual(expected)
    const fallbacks = hosts.flatMap(h => h.stderr.filter(m => m.msg === SWARM_MSG.bulkUnreachable))
    expect(fallbacks).toEqual([])
  })

  it('a bulk port a firewall drops: the fetch gives the bulk path up after the connect timeout and completes over libp2p', async () => {
    const ns = `msl-test-drop-${process.pid}`
    execFileSync('ip', ['netns', 'add', ns])
    try {
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
      const model = await makeModel(4 * MiB)
      const bulkPort = 4101
      // A NetworkPolicy that opens only libp2p's port: SYNs to the bulk port vanish, nothing answers.
      try {
        execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', String(bulkPort), '-j', 'DROP'])
      } catch (err) {
        throw new Error(`this test drops the bulk port with iptables: apt-get install -y iptables (${(err as Error).message.trim()})`, { cause: err })
      }
      const seeder = track(run(['--log-level', 'info', 'seed', '--origin', model.origin, '--cache-dir', join(model.root, 'seeder'), '--listen', '/ip4/127.0.0.1/tcp/4001',
        '--bulk-port', String(bulkPort), '--chunk-size', '1MiB', '--json'], { netns: ns }))
      const info = await seeder.waitFor(m => typeof m.peerId === 'string', 30_000)
      const out = join(model.root, 'host')
      const f = track(run(['--log-level', 'info', 'fetch', 'it-llm', '--out', out, '--bootstrap', info.addrs[0] as string, '--trust', info.peerId as string,
        '--listen', '/ip4/127.0.0.1/tcp/0', '--json'], { netns: ns }))
      expect(await f.exited).toBe(0)
      expect(await treeDigests(out)).toEqual(await treeDigests(model.source))
      const fallback = f.stderr.filter(m => m.msg === SWARM_MSG.bulkUnreachable)
      expect(fallback).toHaveLength(1)
      expect(fallback[0]!.err).toMatch(new RegExp(`not done after ${BULK_CONNECT_TIMEOUT_MS} ms`))
      await seeder.kill()
    } finally {
      execFileSync('ip', ['netns', 'del', ns])
    }
  }, 90_000)
})
