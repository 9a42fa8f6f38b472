/**
 * npm run bench:rss [-- --model-mib 64 --chunk-size 1MiB --hosts 8 --out /dev/shm --memory]
 * Peak memory of `modelswarm fetch` processes that download and upload to each other (issue #12: ≤ 256 MiB
 * per fetch). One seeder holds the model; `--hosts` fetches start together on loopback and trade chunks.
 * When the last completes (all linger and serve until then, as in the lab), each one's VmHWM is read from
 * /proc/PID/status, then they are stopped. Prints peak RSS per host (max, median), wall time and each
 * host's own time. `--memory` also samples process.memoryUsage() in every fetch every 50 ms (a preload
 * through NODE_OPTIONS; the sampling itself costs a few MiB) and prints the peaks of heap, external and
 * array buffers beside RSS, to tell where the memory goes; with it, `--preload FILE` adds a module of your
 * own to each fetch (MS_RSS_HOST in its environment numbers the host), e.g. to write a heap snapshot.
 * Links slower than loopback (uploads that queue, as in the lab): run it as root inside a network namespace
 * of its own whose `lo` is shaped, all hosts sharing the rate, then delete the namespace:
 *   ip netns add ms-rss && ip -n ms-rss link set lo up
 *   tc -n ms-rss qdisc add dev lo root tbf rate 200mbit burst 512kb latency 100ms
 *   ip netns exec ms-rss npm run bench:rss -- --hosts 8 …;  ip netns del ms-rss
 * Models are generated once under <tmp>/ms-rss-bench and reused by later runs: delete it when done.
 */
import { readFileSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateModel } from '../src/cli/demo-model.ts'
import { parseBytes } from '../src/util/units.ts'
import { run, seederVersions, startFetch, startSeeder, type Proc } from '../test/support/cli.ts'

const MiB = 2 ** 20
const { values: args } = parseArgs({
  options: {
    'model-mib': { type: 'string', default: '64' },
    'chunk-size': { type: 'string' },
    hosts: { type: 'string', default: '8' },
    out: { type: 'string', default: '/dev/shm' },
    memory: { type: 'boolean', default: false },
    'no-bulk': { type: 'boolean', default: false },
    preload: { type: 'string' }
  }
})
const modelBytes = Number(args['model-mib']) * MiB
const hosts = Number(args.hosts)
const chunkSize = args['chunk-size'] === undefined ? undefined : parseBytes(args['chunk-size'])
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const f0 = (n: number): string => n.toFixed(0)

const root = join(tmpdir(), 'ms-rss-bench')
const origin = join(root, 'origin')
const name = `rss-${args['model-mib']}m`
await generateModel(join(origin, name, 'v1'), modelBytes)
await writeFile(join(origin, name, 'v1', '_SUCCESS'), '')
await rm(join(root, 'seeder'), { recursive: true, force: true })
const seeder = await startSeeder({ root, origin, source: '', name, version: 'v1', size: modelBytes }, chunkSize === undefined ? [] : ['--chunk-size', String(chunkSize)])
for (;;) {
  const v = (await seederVersions(seeder.admin)).find(x => x.name === name)
  if (v?.state === 'ready') break
  await new Promise(resolve => setTimeout(resolve, 300))
}

const dir = join(args.out, 'ms-rss-bench-hosts')
await rm(dir, { recursive: true, force: true })
await mkdir(dir, { recursive: true })
const sampler = join(dir, 'sampler.mjs')
// Peaks of memoryUsage() fields, written to MS_RSS_SAMPLES at exit.
await writeFile(sampler, `import { writeFileSync } from 'node:fs'
const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
const t = setInterval(() => { const m = process.memoryUsage(); for (const k in peak) if (m[k] > peak[k]) peak[k] = m[k] }, 50)
t.unref()
process.on('exit', () => { try { writeFileSync(process.env.MS_RSS_SAMPLES, JSON.stringify(peak)) } catch {} })
`)
const extra = ['--linger', '10m', ...(args['no-bulk'] ? ['--no-bulk'] : [])]
const t0 = performance.now()
const procs: Proc[] = Array.from({ length: hosts }, (_, i) => {
  const out = join(dir, `h${i}`)
  if (!args.memory) return startFetch(seeder, out, extra, name)
  const env = { NODE_OPTIONS: `--import ${sampler}${args.preload === undefined ? '' : ` --import ${args.preload}`}`, MS_RSS_SAMPLES: `${out}.mem.json`, MS_RSS_HOST: String(i) }
  return run(['--log-level', 'info', 'fetch', name, '--out', out, '--bootstrap', seeder.addr, '--trust', seeder.peerId, '--listen', '/ip4/127.0.0.1/tcp/0', '--json', ...extra], { env })
})
const results = await Promise.all(procs.map(p => p.waitFor(m => m.ok === true, 900_000)))
const wall = (performance.now() - t0) / 1000
const hwm = procs.map(p => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.proc.pid!}/status`, 'utf8'))![1]) * 1024 / MiB)
const up = results.map(r => (r.stats?.bytesUp ?? 0) / MiB)
await Promise.all(procs.map(p => p.kill('SIGTERM')))
const seederHwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${seeder.proc.pid!}/status`, 'utf8'))![1]) * 1024 / MiB
await seeder.kill('SIGTERM')

const lines = [
  `${hosts} hosts + 1 seeder, ${args['model-mib']} MiB model, chunk size ${chunkSize === undefined ? 'chosen' : `${chunkSize / MiB} MiB`}${args['no-bulk'] ? ', --no-bulk' : ''}, output under ${args.out}`,
  `  wall time (start → last host complete): ${wall.toFixed(2)} s; per host ${results.map(r => (r.seconds as number).toFixed(1)).join(' ')} s`,
  `  uploaded per host MiB: ${up.map(f0).join(' ')}`,
  `  CPU-s per host: ${results.map(r => (r.cpuSeconds as number).toFixed(1)).join(' ')}; total ${results.reduce((a, r) => a + (r.cpuSeconds as number), 0).toFixed(1)}`,
  `  peak RSS (VmHWM) per host MiB: ${hwm.map(f0).join(' ')}; max ${f0(Math.max(...hwm))}, median ${f0(median(hwm))}; seeder ${f0(seederHwm)}`
]
if (args.memory) {
  const mem = await Promise.all(procs.map(async (_, i) => JSON.parse(await readFile(join(dir, `h${i}.mem.json`), 'utf8')) as Record<string, number>))
  for (const k of ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers']) {
    lines.push(`  peak ${k.padEnd(12)} MiB: ${mem.map(m => f0(m[k]! / MiB)).join(' ')}`)
  }
}
process.stdout.write(lines.join('\n') + '\n')
await rm(dir, { recursive: true, force: true })
