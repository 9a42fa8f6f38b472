/**
 * What `simulate --compare FILE` sets beside the simulated runs: the lab's measured last-host times, and,
 * when FILE is a lab run's `results.json` (`npm run lab -- --out DIR` writes `DIR/results.json`), the
 * lab's settings (N, F, files, chunk, u, d, u_s, L, warm/cold) as the simulator's option values, so one
 * command replays a lab run. A run recorded without a chunk size (the seeder chose it) is replayed with
 * today's policy for its F (what `--size` sets). FILE may also be a hand-written JSON array of
 * `{ "hosts": 8, "start": "warm", "lastS": 21.3 }` (seconds from the common start to the last host done).
 */
import { readFileSync } from 'node:fs'
import { InvalidInputError } from '../errors.ts'
import type { LabParams } from '../lab/metrics.ts'

export interface LabFigure { hosts: number, start: 'warm' | 'cold', lastS: number }

export interface LabComparison {
  figures: LabFigure[]
  /** Simulator option values (flag → list) taken from the lab's parameters; empty for a plain array. */
  settings: Map<string, string[]>
}

interface LabResults {
  params: LabParams & { scenarios?: string[] }
  runs: Array<{ system: string, scenario: string, hosts: Array<{ doneMs?: number }> }>
}

/** Reads FILE. Throws InvalidInputError naming the file when it is neither form. */
export function readLabComparison (path: string): LabComparison {
  let data: unknown
  try {
    data = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new InvalidInputError(`--compare ${path}: cannot read it as JSON (${(err as Error).message})`)
  }
  if (Array.isArray(data)) {
    if (!data.every(isFigure)) throw new InvalidInputError(`--compare ${path}: expected [{"hosts": 8, "start": "warm", "lastS": 21.3}, …] or a lab run's results.json`)
    return { figures: data, settings: new Map() }
  }
  if (!isLabResults(data)) throw new InvalidInputError(`--compare ${path}: expected a lab run's results.json (params and runs) or [{"hosts": 8, "start": "warm", "lastS": 21.3}, …]`)
  const p = data.params
  const figures: LabFigure[] = []
  for (const run of data.runs) {
    if (run.system !== 'modelswarm' || (run.scenario !== 'warm' && run.scenario !== 'cold')) continue
    const done = run.hosts.map(h => h.doneMs)
    if (done.length === 0 || done.some(d => d === undefined)) continue // a host never finished: no last-host time to compare
    figures.push({ hosts: p.hosts, start: run.scenario, lastS: Math.max(...done as number[]) / 1000 })
  }
  if (figures.length === 0) throw new InvalidInputError(`--compare ${path}: no warm or cold modelswarm run in which every host finished`)
  const rate = (bytesPerSecond: number): string => `${bytesPerSecond}B/s`
  const settings = new Map<string, string[]>([
    ['hosts', [String(p.hosts)]], ['size', [`${p.size}B`]], ['files', [String(p.files)]],
    ...(p.chunkSize === undefined ? [] : [['chunk', [`${p.chunkSize}B`]] as [string, string[]]]),
    ['up', [rate(p.up)]], ['down', [rate(p.down)]], ['seeder-up', [rate(p.seederUp)]], ['line', [rate(p.line)]],
    ['start', figures.map(f => f.start)]
  ])
  return { figures, settings }
}

function isFigure (x: unknown): x is LabFigure {
  const f = x as LabFigure
  return typeof f === 'object' && f !== null && Number.isInteger(f.hosts) && (f.start === 'warm' || f.start === 'cold') && typeof f.lastS === 'number'
}

function isLabResults (x: unknown): x is LabResults {
  const r = x as LabResults
  if (typeof r !== 'object' || r === null || typeof r.params !== 'object' || r.params === null || !Array.isArray(r.runs)) return false
  const p = r.params
  return [p.hosts, p.size, p.files, p.up, p.down, p.seederUp, p.line].every(v => typeof v === 'number') &&
    r.runs.every(run => typeof run === 'object' && run !== null && Array.isArray(run.hosts))
}
