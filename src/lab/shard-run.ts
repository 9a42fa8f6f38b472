/**
 * The shard scenario (issue #17, "time until a reader has the first shard ÷ time until the whole model is
 * verified, goal ≤ 0.2 for a 10-shard model"): the model is SHARDS files; every host runs
 * `modelswarm gateway` over an empty host cache, started and ready before t0; at t0 a reader (curl) in each
 * host's namespace GETs the first shard through its own gateway, which starts the version's fetch and puts
 * the chunks the reader waits for first in the picker's order. Per host, from its reader's ask: the whole
 * first shard received, against the whole model verified in the host cache (its `complete` marker's mtime,
 * looked for every POLL_MS from here: the namespaces share the filesystem).
 *
 * The ask is the reader's own: its exit as seen here less curl's time_total, so the reader's start does not
 * count (this loop's lag in seeing the exit moves the ask later, never earlier); the report gives the ratios
 * from the spawn too.
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { sampleCounters } from './counters.ts'
import { seederCountsNote, seederVersion, startSeeder } from './lab-seeder.ts'
import { LAB_MODEL } from './origin.ts'
import { procStats, spawnIn, type LabProcess } from './processes.ts'
import { isUrgentRequestEnd, urgentRequestsNote } from './request-timing.ts'
import { MODELSWARM_BIN, runDir, until, type RunContext, swarmRunResult } from './run-context.ts'
import type { HostResult, RunResult } from './run-result.ts'
import { HOST_PORT } from './swarm-run.ts'
import { verifyOutput } from './verify.ts'
import { exitDescription } from '../util/process-exit.ts'

/** Files the model is split into in this scenario (the 10-shard model), whatever --files says. */
export const SHARDS = 10
const POLL_MS = 100
/** Each host's gateway, on its own namespace's loopback (the gateway's default address). */
const GATEWAY = '127.0.0.1:9000'

export interface ShardOptions {
  chunkSize?: number
  logLevel: string
}

interface Host {
  role: string
  cache: string
  gateway: LabProcess
  reader?: LabProcess
  /** the reader's ask by its own clock: its exit less curl's time_total */
  askedAt?: number
  firstShardAt?: number
  verifiedAt?: number
  failed?: string
}

export async function runShard (ctx: RunContext, opts: ShardOptions): Promise<RunResult> {
  const { topology } = ctx.lab
  const dir = await runDir(ctx, 'modelswarm-shard')
  const hdfsRoot = '/lab/shard'
  const files = ctx.origin.layout(LAB_MODEL.version, SHARDS)
  const first = files[0]!
  await ctx.origin.writeVersion(hdfsRoot, LAB_MODEL.version, files)
  await ctx.origin.publish(hdfsRoot)

  const procs: LabProcess[] = []
  let sampler: Awaited<ReturnType<typeof sampleCounters>> | undefined
  try {
    const seeder = await startSeeder(ctx, { dir, hdfsRoot, chunkSize: opts.chunkSize, logLevel: opts.logLevel })
    procs.push(seeder.proc)
    ctx.log('modelswarm shard: seeder pulling over the line')
    await until(async () => (await seederVersion(topology.seeder.netns))?.state === 'ready', ctx.timeoutMs, () => 'the seeder never held the version')

    // With --log-level debug the gateways log every chunk request: the report says where readers waited.
    const urgentRequests: Array<Record<string, unknown>> = []
    const hosts: Host[] = topology.hosts.map(h => {
      const cache = join(dir, h.role, 'cache')
      const gateway = spawnIn(h.netns, `${h.role}-gateway`, [process.execPath, MODELSWARM_BIN, '--log-level', opts.logLevel, 'gateway',
        '--cache-dir', cache, '--gateway-listen', GATEWAY, '--anonymous', '--bootstrap', seeder.bootstrap, '--trust', seeder.peerId,
        '--listen', `/ip4/${h.addr}/tcp/${HOST_PORT}`, '--json', '--linger', '10m', '--timeout', '2m'],
      { logFile: join(dir, `${h.role}.log`), onStderrJson: m => { if (isUrgentRequestEnd(m)) urgentRequests.push(m) } })
      procs.push(gateway)
      return { role: h.role, cache, gateway }
    })
    ctx.log(`modelswarm shard: starting ${hosts.length} gateways`)
    // Process start (seconds for 16 on two cores) is not part of the measure: every gateway is up first.
    await Promise.all(hosts.map(h => h.gateway.waitFor(m => typeof m.gateway === 'string', 120_000)))

    sampler = await sampleCounters(topology.switchNs, 500)
    const t0 = Date.now()
    ctx.log(`modelswarm shard: each host reads ${first.path} (1 of ${SHARDS} shards) through its gateway`)
    for (const [i, h] of hosts.entries()) {
      h.reader = spawnIn(topology.hosts[i]!.netns, `${h.role}-reader`, ['curl', '-sS', '--fail', '--create-dirs', '-o', join(dir, h.role, 'reader', first.path),
        '-w', '{"ok":true,"firstByte":%{time_starttransfer},"seconds":%{time_total}}\n', `http://${GATEWAY}/${LAB_MODEL.name}/${LAB_MODEL.version}/${first.path}`])
      procs.push(h.reader)
    }
    const complete = (h: Host): string => join(h.cache, LAB_MODEL.name, `${LAB_MODEL.version}.modelswarm`, 'complete')
    const pending = (): Host[] => hosts.filter(h => h.failed === undefined && (h.firstShardAt === undefined || h.verifiedAt === undefined))
    await until(() => {
      for (const h of pending()) {
        const read = h.firstShardAt === undefined ? h.reader!.stdout.find(l => l.msg.ok === true) : undefined
        if (read !== undefined) {
          h.firstShardAt = read.at
          const seconds = Number(read.msg.seconds)
          if (Number.isFinite(seconds)) h.askedAt = read.at - seconds * 1000
        }
        h.verifiedAt ??= statSync(complete(h), { throwIfNoEntry: false })?.mtimeMs
        const exited = [h.gateway, h.reader!].find(p => exitDescription(p.proc) !== undefined && (p === h.gateway || p.proc.exitCode !== 0))
        if (exited !== undefined) {
          h.failed = `${exited.name}: ${exitDescription(exited.proc)}: ${exited.text.join(' | ')}`
          ctx.log(`modelswarm shard: ${h.role} failed (${h.failed})`)
        }
      }
      return pending().length === 0
    }, ctx.timeoutMs, () => `hosts not done: ${pending().map(h => h.role).join(', ')}`, POLL_MS)
    const end = Date.now()

    const results: HostResult[] = []
    for (const h of hosts) {
      const since = (at: number | undefined): number | undefined => at === undefined ? undefined : at - t0
      const spawnedAt = h.reader!.spawnedAt
      const askedAt = h.askedAt ?? spawnedAt
      results.push({
        host: h.role,
        startedMs: askedAt - t0,
        spawnedMs: spawnedAt - t0,
        doneMs: since(h.verifiedAt),
        ownSeconds: h.verifiedAt === undefined ? undefined : (h.verifiedAt - askedAt) / 1000,
        firstShardMs: since(h.firstShardAt),
        stats: procStats(h.gateway.proc.pid),
        // The host cache's copy and the shard the reader received, both against the origin's digests.
        verified: h.verifiedAt !== undefined && await verifyOutput(join(h.cache, LAB_MODEL.name, LAB_MODEL.version), files) &&
          h.firstShardAt !== undefined && await verifyOutput(join(dir, h.role, 'reader'), [first]),
        failed: h.failed
      })
    }
    return {
      ...await swarmRunResult({ scenario: 'shard', t0, end, hosts: results, sampler, seederPid: seeder.proc.proc.pid }, topology),
      shards: SHARDS,
      notes: [
        `the model is ${SHARDS} files here (whatever --files says); every host's gateway was up before t0, and at t0 each host's reader asked its gateway for ${first.path} (curl, whole object)`,
        `"own start" = the reader's ask by its own clock (its exit less curl's time_total; its spawn when it failed); the whole model verified = the mtime of the host cache's complete marker; the first shard = curl's exit with the whole object`,
        await seederCountsNote(topology.seeder.netns),
        ...[urgentRequestsNote(urgentRequests)].filter(n => n !== undefined),
        ...hosts.filter(h => h.failed !== undefined).map(h => `${h.role} failed: ${h.failed!}`)
      ]
    }
  } finally {
    await sampler?.stop().catch(() => undefined)
    await Promise.all(procs.map(p => p.stop()))
  }
}
