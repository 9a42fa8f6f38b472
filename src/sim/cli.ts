/**
 * `npm run simulate -- [options]`: runs the swarm simulator and prints one row per run. Every option takes
 * a comma-separated list, and the runs are the cartesian product, so a sweep is just a list:
 *
 *   npm run simulate -- --hosts 8,16 --start warm,cold
 *   npm run simulate -- --hosts 1000 --size 100GiB --chunk 16MiB,32MiB,64MiB --up 4Gbit/s --down 4Gbit/s
 *
 * `--compare DIR/results.json` replays a lab run (its settings, unless a flag says otherwise) and prints
 * its measured last-host times beside the simulated ones (lab-figures.ts).
 */
import { Command, CommanderError, Option } from 'commander'
import { chooseChunkSize } from '../chunker/chunk-size.ts'
import { receiveBudgetBytes } from '../peer/download-planner.ts'
import { SWARM_DEFAULTS } from '../peer/swarm-defaults.ts'
import { InvalidInputError } from '../errors.ts'
import { formatBytes, parseBytes, parseDuration, parseRate } from '../util/units.ts'
import { summarize, type SimSummary } from './report.ts'
import { readLabComparison } from './lab-figures.ts'
import { defaultScenario, type Scenario } from './scenario.ts'
import { simulate, type RunOptions } from './swarm-sim.ts'

type Apply = (s: Scenario, text: string) => void

const num = (flag: string, text: string, min = 0): number => {
  const v = Number(text)
  if (!Number.isFinite(v) || v < min) throw new InvalidInputError(`${flag}: expected a number ≥ ${min}, got "${text}"`)
  return v
}
const int = (flag: string, text: string, min = 0): number => {
  const v = num(flag, text, min)
  if (!Number.isInteger(v)) throw new InvalidInputError(`${flag}: expected a whole number, got "${text}"`)
  return v
}

/** Flag → how one value of it changes a scenario; defaults are defaultScenario's (the lab's settings). */
const OPTIONS: Array<{ flag: string, help: string, apply: Apply }> = [
  { flag: 'hosts', help: 'downloading hosts N', apply: (s, t) => { s.hosts = int('--hosts', t, 1) } },
  { flag: 'size', help: 'model size F (e.g. 64MiB, 100GiB)', apply: (s, t) => { s.modelBytes = parseBytes(t); s.chunkSize = chooseChunkSize(s.modelBytes) } },
  { flag: 'files', help: 'files the model is split into', apply: (s, t) => { s.files = int('--files', t, 1) } },
  { flag: 'chunk', help: 'chunk size (default: the seeder\'s choice for --size, as in the lab)', apply: (s, t) => { s.chunkSize = parseBytes(t) } },
  { flag: 'up', help: 'host upload u (e.g. 25Mbit/s)', apply: (s, t) => { s.up = parseRate(t) } },
  { flag: 'down', help: 'host download d', apply: (s, t) => { s.down = parseRate(t) } },
  { flag: 'seeder-up', help: 'seeder upload u_s', apply: (s, t) => { s.seederUp = parseRate(t) } },
  { flag: 'line', help: 'line L from the origin into the seeder', apply: (s, t) => { s.line = parseRate(t) } },
  { flag: 'start', help: 'warm (seeder holds the model) or cold (it pulls over the line while serving)', apply: (s, t) => { s.warm = t === 'warm' ? true : t === 'cold' ? false : bad('--start', t, 'warm or cold') } },
  { flag: 'latency', help: 'one-way message latency (e.g. 1ms)', apply: (s, t) => { s.latencyMs = parseDuration(t) } },
  { flag: 'seed', help: 'random seed', apply: (s, t) => { s.seed = int('--seed', t) } },
  { flag: 'buffer', help: 'receive memory per host (maxBufferedBytes; chunks in flight = the smaller of buffer ÷ chunk and 16, at least 2)', apply: (s, t) => { s.driver.maxBufferedBytes = parseBytes(t) } },
  { flag: 'per-peer', help: 'requests in flight per neighbour (maxRequestsPerPeer)', apply: (s, t) => { s.driver.maxRequestsPerPeer = int('--per-peer', t, 1) } },
  { flag: 'neighbours', help: 'neighbours a host dials (maxNeighbours)', apply: (s, t) => { s.driver.maxNeighbours = int('--neighbours', t, 1) } },
  { flag: 'uploads', help: 'concurrent uploads per node (maxUploads)', apply: (s, t) => { s.driver.maxUploads = int('--uploads', t, 1) } },
  { flag: 'endgame', help: 'missing chunks at which the picker\'s tail rules start', apply: (s, t) => { s.driver.endgameThreshold = int('--endgame', t) } },
  { flag: 'retry-after', help: 'how long a peer is not asked again for a chunk it refused, was busy for, or failed (picker retryAfterMs)', apply: (s, t) => { s.driver.retryAfterMs = parseDuration(t) } },
  { flag: 'busy-retry', help: 'how soon a peer that answered busy is asked again (DownloadPlanner busyRetryMs)', apply: (s, t) => { s.driver.busyRetryMs = parseDuration(t) } },
  { flag: 'busy', help: 'what a busy answer holds back for --busy-retry: peer (the default) or chunk (only that chunk on that peer)', apply: (s, t) => { s.driver.busyBackoff = t === 'peer' || t === 'chunk' ? t : bad('--busy', t, 'peer or chunk') } },
  { flag: 'uploads-per-peer', help: 'concurrent uploads a node serves to one requester (maxUploadsPerPeer; default 1, 0: no limit)', apply: (s, t) => { const n = int('--uploads-per-peer', t); s.driver.maxUploadsPerPeer = n === 0 ? undefined : n } },
  { flag: 'dial-above', help: 'neighbours a host dials above --neighbours for the holders a seeder\'s refusal names, one per refusal (DownloadScheduler; default 4)', apply: (s, t) => { s.driver.hintedAboveLimit = int('--dial-above', t) } },
  { flag: 'upload-queue', help: `other requesters' requests a node holds while its upload slots are taken, instead of answering busy (UploadAdmission queue; default ${SWARM_DEFAULTS.uploadQueue})`, apply: (s, t) => { s.driver.uploadQueue = int('--upload-queue', t) } },
  { flag: 'reveal-to', help: 'peers the seeder tells (HAVE) of a chunk it just pulled, or all (UploadPolicy revealTo; default 1; all still keeps --max-revealing out at most)', apply: (s, t) => { s.policy.revealTo = t === 'all' ? Infinity : int('--reveal-to', t, 1) } },
  { flag: 'max-revealing', help: 'chunks the seeder has told of and no host asked for yet, at most (UploadPolicy maxRevealing; default 8)', apply: (s, t) => { s.policy.maxRevealing = int('--max-revealing', t, 1) } },
  { flag: 'max-refusals', help: 'seeder refusals of one peer for one chunk before it serves anyway (0: never refuse)', apply: (s, t) => { s.policy.maxRefusals = int('--max-refusals', t) } },
  { flag: 'max-hints', help: 'holders named in a refusal', apply: (s, t) => { s.policy.maxHints = int('--max-hints', t, 1) } },
  { flag: 'until', help: 'stop at this simulated time (e.g. 60s); hosts not done by then count as not done', apply: (s, t) => { s.maxSimMs = parseDuration(t) } },
  { flag: 'late', help: 'fraction of hosts joining late, uniformly over --late-window', apply: (s, t) => { s.arrivals.lateFraction = num('--late', t) } },
  { flag: 'late-window', help: 'window for late joiners (e.g. 60s)', apply: (s, t) => { s.arrivals.windowMs = parseDuration(t) } },
  { flag: 'kill', help: 'fraction of hosts killed at random times in --kill-window', apply: (s, t) => { s.failures.killFraction = num('--kill', t) } },
  { flag: 'kill-window', help: 'FROM..TO for kills (e.g. 5s..30s)', apply: (s, t) => { [s.failures.fromMs, s.failures.toMs] = window(t) } },
  { flag: 'restart', help: 'fraction of killed hosts that restart with the chunks they held', apply: (s, t) => { s.failures.restartFraction = num('--restart', t) } },
  { flag: 'restart-after', help: 'delay before a killed host restarts', apply: (s, t) => { s.failures.restartAfterMs = parseDuration(t) } }
]

function bad (flag: string, text: string, expected: string): never {
  throw new InvalidInputError(`${flag}: expected ${expected}, got "${text}"`)
}

function window (text: string): [number, number] {
  const [from, to] = text.split('..')
  if (from === undefined || to === undefined) bad('--kill-window', text, 'FROM..TO, e.g. 5s..30s')
  return [parseDuration(from), parseDuration(to)]
}

/** All combinations of the given lists, in the order the flags are listed in OPTIONS. */
export function scenariosFrom (values: ReadonlyMap<string, readonly string[]>): Scenario[] {
  const base = defaultScenario()
  let out: Scenario[] = [{ ...base, chunkSize: chooseChunkSize(base.modelBytes) }]
  for (const o of OPTIONS) {
    const list = values.get(o.flag)
    if (list === undefined) continue
    out = out.flatMap(base => list.map(text => {
      const s = structuredClone(base)
      o.apply(s, text.trim())
      return s
    }))
  }
  return out
}

export interface RunRow { scenario: Scenario, summary: SimSummary }

export function runOne (s: Scenario, opts: RunOptions = {}): RunRow {
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const result = simulate(s, opts)
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { scenario: s, summary: summarize(s, result, { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, peakRssBytes: process.resourceUsage().maxRSS * 1024 }) }
}

const Mbit = (bytesPerSecond: number): string => `${+(bytesPerSecond * 8 / 1e6).toPrecision(4)}`

function describe (s: Scenario): string {
  const budget = Math.floor(receiveBudgetBytes(s.driver.maxBufferedBytes, s.chunkSize) / s.chunkSize)
  return `N=${s.hosts} F=${formatBytes(s.modelBytes)} chunk=${formatBytes(s.chunkSize)} u/d/us/L=${Mbit(s.up)}/${Mbit(s.down)}/${Mbit(s.seederUp)}/${Mbit(s.line)}Mbit/s ${s.warm ? 'warm' : 'cold'} ` +
    `inflight=${budget} perPeer=${s.driver.maxRequestsPerPeer} nbrs=${s.driver.maxNeighbours} uploads=${s.driver.maxUploads} refusals=${s.policy.maxRefusals ?? 2} revealTo=${s.policy.revealTo ?? 1} retry=${s.driver.retryAfterMs / 1000}s` +
    ` busy=${s.driver.busyBackoff}/${s.driver.busyRetryMs / 1000}s` +
    ` uploadsPerPeer=${s.driver.maxUploadsPerPeer ?? 'any'}` +
    ` uploadQueue=${s.driver.uploadQueue} dialAbove=${s.driver.hintedAboveLimit}` +
    (s.arrivals.lateFraction > 0 ? ` late=${s.arrivals.lateFraction}/${s.arrivals.windowMs / 1000}s` : '') +
    (s.failures.killFraction > 0 ? ` kill=${s.failures.killFraction} restart=${s.failures.restartFraction}` : '')
}

export function formatRow (row: RunRow, lab?: number): string {
  const m = row.summary
  const f = (v: number, d = 2): string => Number.isFinite(v) ? v.toFixed(d) : String(v)
  const compare = lab === undefined ? '' : ` | lab last ${f(lab, 1)} s, sim ÷ lab ${f(m.lastS / lab)}`
  return `${describe(row.scenario)}\n  bound ${f(m.boundS, 1)} s | p50 ${f(m.p50S, 1)} s p99 ${f(m.p99S, 1)} s last ${f(m.lastS, 1)} s = ${f(m.lastOverBound)} × bound` +
    ` | seeder egress ${f(m.seederEgressOverF)} F, line ${f(m.lineBytesOverF)} F, received ${f(m.downloadOverhead, 3)} F/host` +
    ` | seeder asked ${m.seederAnswers.ok + m.seederAnswers.busy + m.seederAnswers.refused + m.seederAnswers.missing}× (${m.seederAnswers.ok} served, ${m.seederAnswers.refused} refused, ${m.seederAnswers.busy} busy)` +
    ` | done ${m.completed}/${m.hosts}${m.killed > 0 ? ` (${m.killed} killed)` : ''}` +
    (m.completed < m.hosts - m.killed ? ` | ended at t = ${f(m.endedS, 1)} s${m.stopped ? ' (CPU limit)' : ''}, chunks held ${f(100 * m.heldFraction)} %` : '') +
    ` | sim ${f(m.wallS, 1)} s wall, ${f(m.cpuS, 1)} CPU-s, ${m.events} events, peak RSS ${f(m.peakRssMiB, 0)} MiB${compare}`
}

function main (argv: string[]): void {
  const program = new Command('simulate')
    .description('Chunk-level swarm simulation with the real download planner (piece picker), upload admission, upload policy and pull planner. Every option takes a comma-separated list; runs are all combinations.')
    .exitOverride()
    .option('--json', 'one JSON object per run instead of text')
    .option('--progress', 'print simulated time, hosts done, chunks held, seeder and line bytes, events and CPU to stderr every 10 simulated seconds')
    .option('--cpu-limit <duration>', 'end a run once it has used this much CPU (e.g. 25m): hosts not done count as not done, and the row says how far it got')
    .option('--compare <file>', 'a lab run\'s results.json: simulate its settings (flags given here win) and print its last-host times beside the simulated ones; or a JSON array [{"hosts":8,"start":"warm","lastS":21.3}]')
  for (const o of OPTIONS) program.addOption(new Option(`--${o.flag} <values>`, o.help))
  program.parse(argv)
  const opts = program.opts<Record<string, string | boolean | undefined>>()
  const comparison = typeof opts.compare === 'string' ? readLabComparison(opts.compare) : undefined
  const values = new Map<string, string[]>(comparison?.settings)
  for (const o of OPTIONS) {
    const v = opts[camel(o.flag)]
    if (typeof v === 'string') values.set(o.flag, v.split(','))
  }
  // Another --size than the lab's gets the seeder's chunk for it, not the lab's, unless --chunk is given.
  if (typeof opts.size === 'string' && typeof opts.chunk !== 'string') values.delete('chunk')
  const lab = comparison?.figures ?? []
  const cpuLimitMs = typeof opts.cpuLimit === 'string' ? parseDuration(opts.cpuLimit) : undefined
  for (const s of scenariosFrom(values)) {
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    const cpuS = (): number => { const c = process.cpuUsage(cpu0); return (c.user + c.system) / 1e6 }
    const onProgress: RunOptions['onProgress'] = opts.progress === true
      ? p => {
        console.error(`  t=${(p.at / 1000).toFixed(0)} s: ${p.completed}/${p.expected} hosts done, chunks held ${(100 * p.chunksHeld / p.chunksTotal).toFixed(2)} %, ` +
          `seeder ${(p.seederBytes / s.modelBytes).toFixed(2)} F, line ${(p.lineBytes / s.modelBytes).toFixed(2)} F, ${p.events} events, ` +
          `${((performance.now() - t0) / 1000).toFixed(0)} s wall, ${cpuS().toFixed(0)} CPU-s`)
      }
      : undefined
    const stop = cpuLimitMs === undefined ? undefined : () => cpuS() * 1000 > cpuLimitMs
    const row = runOne(s, { onProgress, stop })
    const measured = lab.find(l => l.hosts === s.hosts && (l.start === 'warm') === s.warm)?.lastS
    if (opts.json === true) console.log(JSON.stringify({ scenario: s, ...row.summary, ...(measured !== undefined ? { labLastS: measured } : {}) }))
    else console.log(formatRow(row, measured))
  }
}

function camel (flag: string): string {
  return flag.replace(/-(.)/g, (_, c: string) => c.toUpperCase())
}

if (import.meta.main) {
  try {
    main(process.argv)
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2)
    if (err instanceof InvalidInputError) {
      console.error(`simulate: ${err.message}`)
      process.exit(2)
    }
    throw err
  }
}
