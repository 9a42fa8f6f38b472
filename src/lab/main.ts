/**
 * `npm run lab -- [flags]`: modelswarm between real processes in network namespaces (root only), with
 * the baselines in the same run, then a Markdown + PNG report. See README "Network lab".
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { join } from 'node:path'
import { parseBytes, parseDuration, parseRate } from '../util/units.ts'
import { BASELINES, runLab, SCENARIOS, type Baseline, type Scenario } from './run-lab.ts'
import { checkMtu, DEFAULT_MTU, MTU_RANGE } from './topology.ts'

function parsed<T> (parse: (s: string) => T): (s: string) => T {
  return (s: string) => {
    try {
      return parse(s)
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message)
    }
  }
}

function listOf<T extends string> (allowed: readonly T[]): (s: string) => T[] {
  return (s: string) => {
    if (s === 'none') return []
    const items = s.split(',').map(x => x.trim())
    for (const x of items) if (!allowed.includes(x as T)) throw new InvalidArgumentError(`"${x}" is not one of ${allowed.join(', ')}`)
    return items as T[]
  }
}

const positiveInt = parsed(s => {
  const n = Number(s)
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a whole number ≥ 1, got "${s}"`)
  return n
})

const program = new Command('lab')
  .description('Measure modelswarm between real processes in network namespaces (needs root), against the baselines, and write a report.')
  .exitOverride()
  .addOption(new Option('--hosts <n>', 'N: host namespaces, one fetch process each').default(8).argParser(positiveInt))
  .addOption(new Option('--size <bytes>', 'F: model size').default(64 * 2 ** 20, '64MiB').argParser(parsed(parseBytes)))
  .addOption(new Option('--files <n>', 'files the model is split into').default(4).argParser(positiveInt))
  .addOption(new Option('--chunk-size <bytes>', 'the seeder\'s chunk size (default: its own choice)').argParser(parsed(parseBytes)))
  .addOption(new Option('--line <rate>', 'L: the origin\'s line, both ways').default(100e6 / 8, '100Mbit/s').argParser(parsed(parseRate)))
  .addOption(new Option('--up <rate>', 'u: each host\'s upload').default(25e6 / 8, '25Mbit/s').argParser(parsed(parseRate)))
  .addOption(new Option('--down <rate>', 'd: each host\'s download').default(100e6 / 8, '100Mbit/s').argParser(parsed(parseRate)))
  .addOption(new Option('--seeder-up <rate>', 'u_s: the seeder\'s upload').default(50e6 / 8, '50Mbit/s').argParser(parsed(parseRate)))
  .addOption(new Option('--mtu <bytes>', `every link's MTU (${MTU_RANGE[0]}–${MTU_RANGE[1]}; 9000 for jumbo frames: headers and ACKs under 1 % of the wire instead of ~7 %)`).default(DEFAULT_MTU).argParser(parsed(s => checkMtu(Number(s)))))
  .addOption(new Option('--scenarios <list>', `modelswarm scenarios, comma-separated: ${SCENARIOS.join(', ')}`).default(['warm'], 'warm').argParser(listOf(SCENARIOS)))
  .addOption(new Option('--baselines <list>', `baselines, comma-separated, or none: ${BASELINES.join(', ')}`).default([...BASELINES], BASELINES.join(',')).argParser(listOf(BASELINES)))
  .addOption(new Option('--piece-size <bytes>', 'BitTorrent piece size').default(2 ** 20, '1MiB').argParser(parsed(parseBytes)))
  .addOption(new Option('--out <dir>', 'where runs and REPORT.md/lab.png go (default: lab-results/<time>)'))
  .addOption(new Option('--timeout <duration>', 'give up on a run after this long').default(600_000, '10m').argParser(parsed(parseDuration)))
  .addOption(new Option('--log-level <level>', 'modelswarm processes\' log level; logs are kept in each run\'s directory (debug: the shard report sums up the urgent chunk requests)').default('info'))
  .addOption(new Option('--keep-data', 'keep every host\'s copy of the model and the seeders\' caches (by default removed once verified)'))
  .addOption(new Option('--seed <n>', 'random seed (churn victims)').default(1).argParser(positiveInt))
  .addHelpText('after', `
Example (as root):
  npm run lab -- --hosts 16 --size 64MiB --line 100Mbit/s --up 25Mbit/s --down 100Mbit/s --seeder-up 50Mbit/s --scenarios warm,churn`)

try {
  program.parse()
  const o = program.opts<{
    hosts: number, size: number, files: number, chunkSize?: number, line: number, up: number, down: number, seederUp: number, mtu: number,
    scenarios: Scenario[], baselines: Baseline[], pieceSize: number, out?: string, timeout: number, seed: number, logLevel: string, keepData?: boolean
  }>()
  const outDir = o.out ?? join('lab-results', new Date().toISOString().replace(/[:.]/g, '-'))
  const outcome = await runLab({ ...o, outDir, timeoutMs: o.timeout, log: line => process.stderr.write(`${line}\n`) })
  process.stdout.write(`${outcome.ratios.join('\n')}\nreport: ${outcome.reportPath}\n`)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2)
  process.stderr.write(`lab: ${(err as Error).message}\n`)
  process.exitCode = 1
}
