/**
 * The lab's report: REPORT.md (parameters, one summary row per run, ratios against the baselines, per run a
 * table of hosts and one of upload use over time) and lab.png (completion CDFs; bytes over time on the line,
 * the seeder's NIC and all hosts' uploads together), drawn by gnuplot from the .dat files beside it. Without
 * gnuplot the Markdown says so and the data stays.
 */
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { formatBytes, formatRate } from '../util/units.ts'
import { completionCdf, cumulativeBytes, FIRST_SHARD_GOAL, goodputAtGoal, GOODPUT_GOAL, lowerBound, SEEDER_IF, summarize, summarizeFollow, summarizeShard, uploadUse, type LabParams, type RunSummary } from './metrics.ts'
import type { RunResult } from './run-result.ts'
import { DEFAULT_MTU } from './topology.ts'

const execFileAsync = promisify(execFile)
const MIB = 1 << 20

const f2 = (x: number | undefined): string => x === undefined || Number.isNaN(x) ? '–' : x.toFixed(2)

/** Ratios of modelswarm's last-host time to each baseline's, per modelswarm scenario (the printed headline). */
export function ratioLines (summaries: RunSummary[]): string[] {
  const out: string[] = []
  const baselines = summaries.filter(s => !s.label.startsWith('modelswarm'))
  for (const s of summaries) {
    const g = goodputAtGoal(s)
    out.push(`${s.label}: last host ${f2(s.lastCommon)} s ÷ bound ${f2(s.bound)} s = ${f2(s.lastOverBound)}; line ÷ F ${f2(s.lineOverF)}; seeder egress ÷ F ${f2(s.seederOverF)}; ` +
      `goodput ÷ cap ≥ ${GOODPUT_GOAL}: ${g.met} of ${g.counted} hosts (lowest ${Number.isNaN(g.lowest) ? '–' : g.lowest.toPrecision(5)})`)
  }
  for (const s of summaries.filter(x => x.label.startsWith('modelswarm'))) {
    for (const b of baselines) out.push(`${s.label} ÷ ${b.label} (last host): ${f2(s.lastCommon / b.lastCommon)}`)
  }
  return out
}

/** The follow and shard scenarios' own headlines (issues #15 and #17), one line per such run. */
export function scenarioLines (runs: RunResult[], p: LabParams): string[] {
  const out: string[] = []
  for (const run of runs) {
    const f = summarizeFollow(run, p)
    if (f !== undefined) {
      out.push(`modelswarm follow: publish → last host switched ${f2(f.lastSwitch)} s ÷ bound ${f2(f.bound)} s = ${f2(f.lastOverBound)}; ` +
        `seeder noticed the new version after ${f2(f.seederNoticed)} s (it lists the origin every ${f.seederPoll} s; hosts ask for latest every ${f.followInterval} s); ` +
        `line ÷ F for the new version ${f2(f.lineOverF)}`)
    }
    const s = summarizeShard(run)
    if (s !== undefined) {
      out.push(`modelswarm shard: first shard ÷ whole model verified, per host, from each reader's ask: median ${f2(s.median)}, max ${f2(s.max)} ` +
        `(${s.shards} shards; goal ≤ ${FIRST_SHARD_GOAL}); from the lab's spawn of the reader: median ${f2(s.fromSpawn.median)}, max ${f2(s.fromSpawn.max)}`)
    }
  }
  return out
}

/** Per host, the scenario's own times: when follow learned of and switched to the new version, when a reader had the first shard. */
function scenarioTable (run: RunResult): string[] {
  const sec = (ms: number | undefined): string => f2(ms === undefined ? undefined : ms / 1000)
  if (run.follow !== undefined) {
    return ['| host | noticed the new version (s after publish) | `current` switched (s after publish) | own fetch of the new version (s) |', '|---|---|---|---|',
      ...run.hosts.map(h => `| ${h.host} | ${sec(h.noticedMs)} | ${sec(h.doneMs)} | ${f2(h.ownSeconds)} |`)]
  }
  const shard = summarizeShard(run)
  if (shard !== undefined) {
    return ['| host | reader spawned (s) | reader asked (s) | first shard (s) | whole model verified (s) | first shard ÷ whole, from the ask | from the spawn |', '|---|---|---|---|---|---|---|',
      ...run.hosts.map((h, i) => `| ${h.host} | ${sec(h.spawnedMs)} | ${sec(h.startedMs)} | ${sec(h.firstShardMs)} | ${sec(h.doneMs)} | ${f2(shard.ratios[i])} | ${f2(shard.fromSpawn.ratios[i])} |`)]
  }
  return []
}

function paramsTable (p: LabParams): string[] {
  const mbit = (r: number): string => `${(r * 8 / 1e6).toFixed(0)} Mbit/s`
  return [
    '| N | F | files | chunk | L (line) | u (host up) | d (host down) | u_s (seeder up) | MTU | bound max(F/L, F/u_s, F/d, N·F/(u_s+Σu)) |',
    '|---|---|---|---|---|---|---|---|---|---|',
    `| ${p.hosts} | ${formatBytes(p.size)} | ${p.files} | ${p.chunkSize === undefined ? 'default' : formatBytes(p.chunkSize)} | ${mbit(p.line)} | ${mbit(p.up)} | ${mbit(p.down)} | ${mbit(p.seederUp)} | ${p.mtu ?? DEFAULT_MTU} | ${f2(lowerBound(p))} s |`
  ]
}

/** The run's upload use in tenths of its time (metrics.ts, uploadUse). */
function uploadUseTable (run: RunResult, p: LabParams): string[] {
  return [
    'Upload use, from the kernel\'s counters in tenths of the run (frames ÷ shaped rate: a full link reads ~1.0, of',
    'which TCP payload is ~0.96), and the share of this machine\'s cores busy (/proc/stat: every process of the lab',
    'and the kernel\'s packet work; near 1.00 the span was paced by CPU, not by the links):',
    '',
    '| span (s) | hosts\' uplinks ÷ Σu | seeder\'s uplink ÷ u_s | cores busy | hosts done |',
    '|---|---|---|---|---|',
    ...uploadUse(run, p).map(u => `| ${u.from.toFixed(1)}–${u.to.toFixed(1)} | ${f2(u.hosts)} | ${f2(u.seeder)} | ${f2(u.cpu)} | ${u.done} |`)
  ]
}

function hostsTable (run: RunResult, s: RunSummary): string[] {
  const rows = ['| host | started (s) | done from common start (s) | done from own start (s) | goodput ÷ cap | peak RSS | CPU-s | verified | note |', '|---|---|---|---|---|---|---|---|---|']
  run.hosts.forEach((h, i) => {
    const note = [h.killed === true ? (h.restarted === true ? 'killed, restarted' : 'killed') : '', h.late === true ? 'late' : '', h.failed === undefined ? '' : 'FAILED (see notes)'].filter(Boolean).join(', ')
    rows.push(`| ${h.host} | ${f2(h.startedMs / 1000)} | ${f2(h.doneMs === undefined ? undefined : h.doneMs / 1000)} | ${f2(h.ownSeconds)} | ${s.goodputOverCap[i]?.toFixed(3) ?? '–'} | ${h.stats === undefined ? '–' : formatBytes(h.stats.peakRss)} | ${f2(h.stats?.cpuSeconds)} | ${h.verified ? 'yes' : 'NO'} | ${note} |`)
  })
  if (run.seederStats !== undefined) rows.push('', `Seeder process: peak RSS ${formatBytes(run.seederStats.peakRss)}, ${f2(run.seederStats.cpuSeconds)} CPU-s.`)
  return rows
}

const slug = (label: string): string => label.replace(/\s+/g, '-')

async function plot (dir: string, runs: RunResult[], summaries: RunSummary[]): Promise<string | undefined> {
  for (const [i, run] of runs.entries()) {
    const name = slug(summaries[i]!.label)
    await writeFile(join(dir, `${name}-cdf.dat`), [[0, 0] as [number, number], ...completionCdf(run)].map(([t, f]) => `${t.toFixed(3)} ${f.toFixed(4)}`).join('\n') + '\n')
    const line = cumulativeBytes(run.samples, run.t0, 'off', 'rx')
    const seed = cumulativeBytes(run.samples, run.t0, SEEDER_IF, 'rx')
    const hostsUp = run.hosts.map(h => cumulativeBytes(run.samples, run.t0, h.host, 'rx'))
    await writeFile(join(dir, `${name}-bytes.dat`), line.map(([t, b], j) =>
      `${t.toFixed(3)} ${(b / MIB).toFixed(3)} ${(seed[j]![1] / MIB).toFixed(3)} ${(hostsUp.reduce((sum, h) => sum + h[j]![1], 0) / MIB).toFixed(3)}`).join('\n') + '\n')
  }
  const cdf = summaries.map(s => `'${slug(s.label)}-cdf.dat' using 1:2 with steps lw 2 title '${s.label}'`).join(', ')
  const bytes = summaries.flatMap(s => [
    `'${slug(s.label)}-bytes.dat' using 1:2 with lines lw 2 title '${s.label}: line'`,
    `'${slug(s.label)}-bytes.dat' using 1:3 with lines dt 2 lw 2 title '${s.label}: seeder NIC'`,
    `'${slug(s.label)}-bytes.dat' using 1:4 with lines dt 3 lw 2 title '${s.label}: all hosts, upload'`
  ]).join(', ')
  const script = [
    "set terminal pngcairo size 1200,1000 font 'sans,10'",
    "set output 'lab.png'",
    'set multiplot layout 2,1',
    "set title 'Per-host completion (from the common start)'", "set xlabel 'seconds'", "set ylabel 'fraction of hosts done'", 'set xrange [0:*]', 'set yrange [0:1.05]', 'set key bottom right', 'set grid',
    `plot ${cdf}`,
    "set title 'Bytes sent over time (kernel interface counters; 0 s = hosts start)'", "set ylabel 'MiB'", 'set xrange [*:*]', 'set yrange [0:*]', 'set key top left',
    `plot ${bytes}`,
    'unset multiplot'
  ].join('\n')
  await writeFile(join(dir, 'lab.gp'), script + '\n')
  try {
    await execFileAsync('gnuplot', ['lab.gp'], { cwd: dir })
    return 'lab.png'
  } catch {
    return undefined
  }
}

export async function writeReport (dir: string, p: LabParams, runs: RunResult[], extraNotes: string[]): Promise<{ path: string, ratios: string[] }> {
  const summaries = runs.map(r => summarize(r, p))
  const png = await plot(dir, runs, summaries)
  const ratios = [...ratioLines(summaries), ...scenarioLines(runs, p)]
  const md: string[] = [
    `# modelswarm network lab — ${new Date().toISOString()}`,
    '',
    ...paramsTable(p),
    '',
    'Origin: a real MiniDFSCluster in the offline namespace; the seeder pulls over WebHDFS across the shaped line, and',
    'the direct baseline reads the same files the same way. Byte figures come from the kernel\'s interface counters',
    '(switch-side veth ends, `ip -s -j link`), so they include Ethernet/IP/TCP headers: one copy of F reads as slightly above 1.',
    `Host rates: up ${formatRate(p.up)}, down ${formatRate(p.down)}; seeder up ${formatRate(p.seederUp)}; line ${formatRate(p.line)}.`,
    '',
    '## Summary',
    '',
    '| run | done | verified | last host, common start (s) | last host, own start (s) | last ÷ bound | line bytes ÷ F | seeder egress ÷ F | p50 (s) | p99 (s) | p99 ÷ p50 |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...summaries.map(s => `| ${s.label} | ${s.completed}/${s.total} | ${s.allVerified ? 'yes' : 'NO'} | ${f2(s.lastCommon)} | ${f2(s.lastOwn)} | ${f2(s.lastOverBound)} | ${f2(s.lineOverF)} | ${f2(s.seederOverF)} | ${f2(s.p50)} | ${f2(s.p99)} | ${f2(s.p99 / s.p50)} |`),
    '',
    '## Ratios',
    '',
    ...ratios.map(r => `- ${r}`),
    '',
    png === undefined ? '_No plot: gnuplot is missing or failed (apt-get install -y gnuplot-nox); the .dat files are here._' : `![completion CDF and bytes over time](${png})`,
    ''
  ]
  for (const [i, run] of runs.entries()) {
    const own = scenarioTable(run)
    md.push(`## ${summaries[i]!.label}`, '', ...hostsTable(run, summaries[i]!), '', ...uploadUseTable(run, p), '', ...(own.length > 0 ? [...own, ''] : []), ...run.notes.map(n => `- ${n}`), '')
  }
  if (extraNotes.length > 0) md.push('## Notes', '', ...extraNotes.map(n => `- ${n}`), '')
  const path = join(dir, 'REPORT.md')
  await writeFile(path, md.join('\n'))
  return { path, ratios }
}
