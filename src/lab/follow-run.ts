/**
 * The follow scenario (issue #15, "deploy updated models every minute"): every host runs
 * `modelswarm fetch lab-llm --follow`; once every host's `current` link names the first version, the next
 * version is published at the origin — every byte differs from the first (new content seeds), so no chunk
 * is shared — and the lab measures, per host, publish → its `current` names the new version. The link is
 * read from here (the namespaces share the filesystem) every SWITCH_POLL_MS. t0 is taken just before the
 * marker write. The seeder lists the origin every SEEDER_POLL_MS, hosts ask for latest every
 * FOLLOW_INTERVAL_MS: both short, so the figure is mostly the transfer.
 */
import { readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { SEEDER_MSG } from '../seeder/seeder-log.ts'
import { sampleCounters } from './counters.ts'
import { SEEDER_POLL_MS, seederCountsNote, seederVersion, startSeeder } from './lab-seeder.ts'
import { LAB_MODEL, LAB_NEXT_VERSION } from './origin.ts'
import { procStats, spawnIn, type LabProcess } from './processes.ts'
import { MODELSWARM_BIN, runDir, until, type RunContext, swarmRunResult } from './run-context.ts'
import type { HostResult, RunResult } from './run-result.ts'
import { HOST_PORT } from './swarm-run.ts'
import { verifyOutput } from './verify.ts'
import { exitDescription } from '../util/process-exit.ts'

/** The hosts' --follow-interval, ms. */
export const FOLLOW_INTERVAL_MS = 500
/** How often the lab reads every host's `current` link, ms: the resolution of the switch times. */
const SWITCH_POLL_MS = 100
/** Each follow host's bulk port: fixed, as the Helm chart's `swarm.bulk.port`, so the lab covers fixed ports across versions. */
const HOST_BULK_PORT = 4101
/** What follow logs when it sees a new latest version (src/peer/follow.ts). */
const FOLLOW_NEW_VERSION = 'following: new version'

export interface FollowOptions {
  chunkSize?: number
  logLevel: string
}

interface Host {
  role: string
  root: string
  proc: LabProcess
  startedAt: number
  switchedAt?: number
  failed?: string
}

/** The version `root/current` names, undefined while there is none. */
async function currentVersion (root: string): Promise<string | undefined> {
  const target = await readlink(join(root, 'current')).catch(() => undefined)
  return target?.startsWith('versions/') === true ? target.slice('versions/'.length) : undefined
}

export async function runFollow (ctx: RunContext, opts: FollowOptions): Promise<RunResult> {
  const { topology } = ctx.lab
  const dir = await runDir(ctx, 'modelswarm-follow')
  const hdfsRoot = '/lab/follow'
  const next = LAB_NEXT_VERSION
  const nextFiles = ctx.origin.layout(next, ctx.origin.files.length)
  await ctx.origin.writeVersion(hdfsRoot)
  await ctx.origin.publish(hdfsRoot)

  const procs: LabProcess[] = []
  const seederSaw: { noticedAt?: number, pulledAt?: number } = {}
  const seederLog = (m: Record<string, unknown>): void => {
    // pino's `time`: ms since the epoch, when the seeder logged it.
    if (m.msg === SEEDER_MSG.latestUpdated && m.version === next) seederSaw.noticedAt ??= Number(m.time)
    if (m.msg === SEEDER_MSG.versionPulled && m.version === `${LAB_MODEL.name}@${next}`) seederSaw.pulledAt ??= Number(m.time)
  }
  let sampler: Awaited<ReturnType<typeof sampleCounters>> | undefined
  try {
    const seeder = await startSeeder(ctx, { dir, hdfsRoot, chunkSize: opts.chunkSize, logLevel: opts.logLevel, onLog: seederLog })
    procs.push(seeder.proc)
    ctx.log('modelswarm follow: seeder pulling the first version over the line')
    await until(async () => (await seederVersion(topology.seeder.netns))?.state === 'ready', ctx.timeoutMs, () => 'the seeder never held the first version')

    // Per host, when its follow logged the new version (pino's `time`).
    const noticedAt = new Map<string, number>()
    const hosts: Host[] = topology.hosts.map(h => {
      const root = join(dir, h.role, 'model')
      const startedAt = Date.now()
      const proc = spawnIn(h.netns, h.role, [process.execPath, MODELSWARM_BIN, '--log-level', opts.logLevel, 'fetch', LAB_MODEL.name, '--follow',
        '--follow-interval', `${FOLLOW_INTERVAL_MS}ms`, '--out', root, '--bootstrap', seeder.bootstrap, '--trust', seeder.peerId,
        // Fixed ports, as a NetworkPolicy needs: every version's swarm runs on follow's one node (issue #15).
        '--listen', `/ip4/${h.addr}/tcp/${HOST_PORT}`, '--bulk-port', String(HOST_BULK_PORT), '--json', '--timeout', '2m'], {
        logFile: join(dir, `${h.role}.log`),
        onStderrJson: m => {
          if (m.msg === FOLLOW_NEW_VERSION && m.version === `${LAB_MODEL.name}@${next}` && !noticedAt.has(h.role)) noticedAt.set(h.role, Number(m.time))
        }
      })
      procs.push(proc)
      return { role: h.role, root, proc, startedAt }
    })
    const checkExits = (): void => {
      for (const h of hosts) {
        if (h.failed === undefined && exitDescription(h.proc.proc) !== undefined) {
          h.failed = `${exitDescription(h.proc.proc)}: ${h.proc.text.join(' | ')}`
          ctx.log(`modelswarm follow: ${h.role} failed (${h.failed})`)
        }
      }
    }
    const hostsStart = Date.now()
    ctx.log(`modelswarm follow: ${hosts.length} hosts follow ${LAB_MODEL.name}; waiting until every host's current names ${LAB_MODEL.version}`)
    await until(async () => {
      checkExits()
      const on = await Promise.all(hosts.map(h => currentVersion(h.root)))
      return hosts.every((h, i) => h.failed !== undefined || on[i] === LAB_MODEL.version)
    }, ctx.timeoutMs, () => 'not every host switched to the first version')
    const firstVersionMs = Date.now() - hostsStart

    // Written before the clock starts: inside the offline namespace, no line traffic, and invisible to the
    // seeder until the marker appears.
    await ctx.origin.writeVersion(hdfsRoot, next, nextFiles)
    sampler = await sampleCounters(topology.switchNs, 500)
    const t0 = Date.now()
    await ctx.origin.publish(hdfsRoot, next)
    const publishCallMs = Date.now() - t0
    ctx.log(`modelswarm follow: ${next} published at the origin`)
    const pending = (): Host[] => hosts.filter(h => h.switchedAt === undefined && h.failed === undefined)
    await until(async () => {
      checkExits()
      const waiting = pending()
      const on = await Promise.all(waiting.map(h => currentVersion(h.root)))
      const now = Date.now()
      waiting.forEach((h, i) => { if (on[i] === next) h.switchedAt = now })
      return pending().length === 0
    }, ctx.timeoutMs, () => `hosts not switched to ${next}: ${pending().map(h => h.role).join(', ')}`, SWITCH_POLL_MS)
    const end = Date.now()

    const since = (at: number | undefined): number | undefined => at === undefined ? undefined : at - t0
    const results: HostResult[] = []
    for (const h of hosts) {
      const done = h.proc.stdout.find(l => l.msg.ok === true && l.msg.version === next)
      results.push({
        host: h.role,
        startedMs: h.startedAt - t0,
        doneMs: h.switchedAt === undefined ? undefined : h.switchedAt - t0,
        ownSeconds: done === undefined ? undefined : Number(done.msg.seconds),
        noticedMs: since(noticedAt.get(h.role)),
        stats: procStats(h.proc.proc.pid),
        // Through the link, as a server reading `current` sees it.
        verified: h.switchedAt !== undefined && await verifyOutput(join(h.root, 'current'), nextFiles),
        failed: h.failed
      })
    }
    return {
      ...await swarmRunResult({ scenario: 'follow', t0, end, hosts: results, sampler, seederPid: seeder.proc.proc.pid }, topology),
      follow: {
        publishCallMs,
        seederNoticedMs: since(seederSaw.noticedAt),
        seederPulledMs: since(seederSaw.pulledAt),
        seederPollMs: SEEDER_POLL_MS,
        followIntervalMs: FOLLOW_INTERVAL_MS,
        firstVersionMs
      },
      notes: [
        `${LAB_MODEL.version} reached every host's current ${(firstVersionMs / 1000).toFixed(2)} s after the hosts started (process start included); then ${next} was published, every byte of it different (no chunk shared with ${LAB_MODEL.version})`,
        `t0 = just before the ${next} marker write at the origin (the write took ${publishCallMs} ms); times are when the lab, reading every host's current link every ${SWITCH_POLL_MS} ms, saw it name ${next}; "own" = the host's fetch of ${next} from its follow's start of it`,
        `seeder lists the origin every ${SEEDER_POLL_MS} ms, hosts ask for latest every ${FOLLOW_INTERVAL_MS} ms; the seeder signed latest → ${next} after ${fmt(since(seederSaw.noticedAt))} s and held all of it after ${fmt(since(seederSaw.pulledAt))} s`,
        'line bytes and seeder egress count from t0: the new version only',
        await seederCountsNote(topology.seeder.netns, next),
        ...hosts.filter(h => h.failed !== undefined).map(h => `${h.role} failed: ${h.failed!}`)
      ]
    }
  } finally {
    await sampler?.stop().catch(() => undefined)
    await Promise.all(procs.map(p => p.stop()))
  }
}

function fmt (ms: number | undefined): string {
  return ms === undefined ? '?' : (ms / 1000).toFixed(2)
}
