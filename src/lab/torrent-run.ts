/**
 * Baseline: a BitTorrent swarm (Debian's python3-libtorrent, see torrent-peer.py) on the same bytes, in the
 * same namespaces at the same rates. Warm like modelswarm's warm scenario: the torrent seeder in the seeder
 * namespace first reads the files from the origin over the line, then holds them; every host joins with
 * the seeder and every other host as peers (what modelswarm learns from its neighbour hints).
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { runBytes, sampleCounters } from './counters.ts'
import { curlArgv } from './direct-run.ts'
import { LabError } from './lab-error.ts'
import { LAB_MODEL } from './origin.ts'
import { procStats, spawnIn, type LabProcess } from './processes.ts'
import { hostOutcome, runDir, until, type RunContext } from './run-context.ts'
import type { HostResult, RunResult } from './run-result.ts'
import { exitDescription } from '../util/process-exit.ts'

const execFileAsync = promisify(execFile)
const SCRIPT = fileURLToPath(new URL('./torrent-peer.py', import.meta.url))
/** The Debian Python, which has python3-libtorrent (a pyenv python3 on PATH does not). */
export const DEBIAN_PYTHON = '/usr/bin/python3'
const PORT = 6881

/** Throws with the install command unless the Debian Python can import libtorrent. */
export async function checkLibtorrent (): Promise<void> {
  try {
    await execFileAsync(DEBIAN_PYTHON, ['-c', 'import libtorrent'])
  } catch {
    throw new LabError(`${DEBIAN_PYTHON} cannot import libtorrent: apt-get update && apt-get install -y python3-libtorrent`)
  }
}

export async function runTorrent (ctx: RunContext, opts: { pieceSize: number }): Promise<RunResult> {
  await checkLibtorrent()
  const { topology } = ctx.lab
  const dir = await runDir(ctx, 'bittorrent')
  const root = '/lab/bittorrent'
  await ctx.origin.writeVersion(root)
  const sampler = await sampleCounters(topology.switchNs, 500)
  const procs: LabProcess[] = []
  try {
    ctx.log('bittorrent: seeder reads the files from the origin over the line')
    const seedData = join(dir, 'seeder', LAB_MODEL.name)
    const pull = spawnIn(topology.seeder.netns, 'seeder-pull', curlArgv(ctx.origin.files.map(f => ({ url: ctx.origin.openUrl(root, f), path: f.path })), seedData))
    if (await pull.exited !== 0) throw new LabError(`bittorrent seeder could not read the origin: ${pull.text.join(' | ')}`)
    const torrent = join(dir, `${LAB_MODEL.name}.torrent`)
    await execFileAsync(DEBIAN_PYTHON, [SCRIPT, 'make', seedData, torrent, String(opts.pieceSize)])

    const peerAddrs = [topology.seeder, ...topology.hosts].map(n => `${n.addr}:${PORT}`)
    const seeder = spawnIn(topology.seeder.netns, 'bt-seeder', [DEBIAN_PYTHON, SCRIPT, 'peer', torrent, join(dir, 'seeder'), topology.seeder.addr, String(PORT)])
    procs.push(seeder)
    await seeder.waitFor(m => m.ok === true, 60_000)

    const t0 = Date.now()
    ctx.log(`bittorrent: ${topology.hosts.length} hosts join`)
    const hostProcs = topology.hosts.map(h => spawnIn(h.netns, h.role, [DEBIAN_PYTHON, SCRIPT, 'peer', torrent, join(dir, h.role), h.addr, String(PORT),
      ...peerAddrs.filter(a => a !== `${h.addr}:${PORT}`)]))
    procs.push(...hostProcs)
    const done = (p: LabProcess): boolean => p.stdout.some(l => l.msg.ok === true)
    await until(() => {
      const dead = hostProcs.find(p => exitDescription(p.proc) !== undefined)
      if (dead !== undefined) throw new LabError(`bittorrent peer ${dead.name} exited (${exitDescription(dead.proc)}): ${dead.text.join(' | ')}`)
      return hostProcs.every(done)
    }, ctx.timeoutMs, () => `${hostProcs.filter(p => !done(p)).length} peers not done`)
    const end = Date.now()
    const hosts: HostResult[] = []
    for (const [i, p] of hostProcs.entries()) {
      const h = topology.hosts[i]!
      hosts.push(await hostOutcome(h.role, t0, p.spawnedAt, p, join(dir, h.role, LAB_MODEL.name), ctx))
    }
    const seederStats = procStats(seeder.proc.pid)
    const last = await sampler.stop()
    return {
      system: 'bittorrent',
      scenario: 'warm',
      t0,
      end,
      hosts,
      samples: sampler.samples,
      ...runBytes(sampler.samples, last, t0, topology),
      seederStats,
      notes: [`libtorrent ${opts.pieceSize}-byte pieces, v1 torrent, DHT/LSD/UPnP/NAT-PMP off, every peer given every other by connect_peer`]
    }
  } finally {
    await sampler.stop().catch(() => undefined)
    await Promise.all(procs.map(p => p.stop()))
  }
}
