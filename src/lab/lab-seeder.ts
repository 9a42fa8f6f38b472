/** The modelswarm runs' seeder: one `modelswarm seed` in the seeder namespace, watching a run's root at the origin. */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { HDFS_USER, LAB_MODEL } from './origin.ts'
import { spawnIn, type LabProcess } from './processes.ts'
import { MODELSWARM_BIN, type RunContext } from './run-context.ts'

const execFileAsync = promisify(execFile)

const SEEDER_PORT = 4001
const ADMIN = '127.0.0.1:7070'
/** How often the seeder lists the origin for new versions (`--poll-interval`), ms: short, so noticing a version adds little to a run. */
export const SEEDER_POLL_MS = 500

export interface LabSeeder {
  proc: LabProcess
  peerId: string
  /** its multiaddr for hosts' --bootstrap */
  bootstrap: string
}

export interface LabSeederOptions {
  /** the run's directory: the seeder's cache and log go there */
  dir: string
  /** the root it watches at the origin */
  hdfsRoot: string
  chunkSize?: number
  logLevel: string
  /** called with each of its JSON log lines */
  onLog?: (m: Record<string, unknown>) => void
}

/** Starts the seeder and waits for its peer id; it is stopped again if that fails. */
export async function startSeeder (ctx: RunContext, o: LabSeederOptions): Promise<LabSeeder> {
  const { seeder } = ctx.lab.topology
  const proc = spawnIn(seeder.netns, 'seeder', [process.execPath, MODELSWARM_BIN, '--log-level', o.logLevel, 'seed',
    '--hdfs', ctx.origin.namenode, '--hdfs-root', o.hdfsRoot, '--hdfs-user', HDFS_USER, '--cache-dir', join(o.dir, 'seeder'),
    '--listen', `/ip4/${seeder.addr}/tcp/${SEEDER_PORT}`, '--admin', ADMIN, '--poll-interval', `${SEEDER_POLL_MS}ms`, '--json',
    ...(o.chunkSize === undefined ? [] : ['--chunk-size', String(o.chunkSize)])], { logFile: join(o.dir, 'seeder.log'), onStderrJson: o.onLog })
  try {
    const peerId = (await proc.waitFor(m => typeof m.peerId === 'string', 60_000)).msg.peerId as string
    return { proc, peerId, bootstrap: `/ip4/${seeder.addr}/tcp/${SEEDER_PORT}/p2p/${peerId}` }
  } catch (err) {
    await proc.stop()
    throw err
  }
}

/**
 * The seeder's own count for one version, as a report note: bytes it sent and pulled, and its upload gate's
 * decisions (why egress ran above one copy of F).
 */
export async function seederCountsNote (netns: string, version: string = LAB_MODEL.version): Promise<string> {
  const v = await seederVersion(netns, version).catch(() => undefined)
  const decisions = Object.entries((v?.uploadDecisions ?? {}) as Record<string, number>).map(([d, n]) => `${d} ${n}`).join(', ')
  return `seeder's own count for ${version}: egress ${String(v?.egressBytes ?? '?')} B, pulled ${String(v?.bytesPulled ?? '?')} B; upload gate: ${decisions === '' ? '?' : decisions}`
}

/** The seeder's view of one version of the lab's model, through its admin API (reachable only inside its namespace). */
export async function seederVersion (netns: string, version: string = LAB_MODEL.version): Promise<Record<string, unknown> | undefined> {
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', netns, 'curl', '-sS', '--max-time', '5', `http://${ADMIN}/v1/models`])
  const versions = (JSON.parse(stdout) as { versions: Array<Record<string, unknown>> }).versions
  return versions.find(v => v.name === LAB_MODEL.name && v.version === version)
}
