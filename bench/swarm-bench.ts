/**
 * npm run bench:swarm [-- --size-gib 2 --rounds 3 --hosts 8 --swarm-mib 512]
 * (1) One host downloads a model from a seeder that already holds it, over the TLS-PSK bulk path and over
 *     libp2p streams, beside raw TCP, TCP + SHA-256, node:tls, node:tls + SHA-256 and a bare libp2p Noise
 *     stream, interleaved, medians and ratios to raw TCP in the same round. Output goes to tmpfs so the
 *     disk does not hide the data path (this box's disk writes ≈ 0.4 GB/s).
 * (2) One seeder and N hosts fetching together: wall time, seeder egress ÷ model size, peak RSS per host.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateModel } from '../src/cli/demo-model.ts'
import { seederVersions, startFetch, startSeeder, type Proc } from '../test/support/cli.ts'
import { runBaseline, type Mode } from './transport-baseline.ts'

const GiB = 2 ** 30
const MiB = 2 ** 20
const { values: args } = parseArgs({ options: { 'size-gib': { type: 'string', default: '2' }, rounds: { type: 'string', default: '3' }, hosts: { type: 'string', default: '8' }, 'swarm-mib': { type: 'string', default: '512' } } })
const sizeGiB = Number(args['size-gib'])
const rounds = Number(args.rounds)
const hosts = Number(args.hosts)
const swarmMiB = Number(args['swarm-mib'])
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const outRoot = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

const root = join(tmpdir(), 'modelswarm-bench-swarm')
const origin = join(root, 'origin')
process.stderr.write(`generating models in ${origin} (reused across runs)…\n`)
await generateModel(join(origin, 'bench-big', 'v1'), Math.round(sizeGiB * GiB))
await generateModel(join(origin, 'bench-small', 'v1'), swarmMiB * MiB)
await writeFile(join(origin, 'bench-big', 'v1', '_SUCCESS'), '')
await writeFile(join(origin, 'bench-small', 'v1', '_SUCCESS'), '')
await rm(join(root, 'seeder'), { recursive: true, force: true })
const model = { root, origin, source: '', name: 'bench-big', version: 'v1', size: 0 }
const seeder = await startSeeder(model)
const seederCpu = (): number => {
  const f = execFileSync('cat', [`/proc/${seeder.proc.pid}/stat`]).toString().split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}
for (;;) {
  const vs = await seederVersions(seeder.admin)
  if (vs.length === 2 && vs.every(v => v.state === 'ready')) break
  await new Promise(resolve => setTimeout(resolve, 500))
}

interface Row { name: string, gibps: number, recvCpu: number, sendCpu: number, rssMiB?: number }
async function fetchOnce (bulk: boolean): Promise<Row> {
  const out = join(outRoot, 'modelswarm-bench-host')
  await rm(out, { recursive: true, force: true })
  await rm(`${out}.modelswarm`, { recursive: true, force: true })
  const c0 = seederCpu()
  const f = startFetch(seeder, out, bulk ? [] : ['--no-bulk'], 'bench-big')
  const r = await f.waitFor(m => m.ok === true, 600_000)
  await f.exited
  const sendCpu = seederCpu() - c0
  await rm(out, { recursive: true, force: true })
  const gib = r.bytes / GiB
  return { name: bulk ? 'modelswarm fetch, TLS-PSK bulk path' : 'modelswarm fetch, libp2p Noise streams', gibps: gib / r.seconds, recvCpu: r.cpuSeconds / gib, sendCpu: sendCpu / gib, rssMiB: r.peakRssBytes / MiB }
}

const BASELINES: Array<[Mode, string]> = [['tcp', 'raw TCP'], ['tcp-sha', 'raw TCP + SHA-256'], ['tls', 'raw node:tls (PSK AES-128-GCM)'], ['tls-sha', 'raw node:tls + SHA-256'], ['noise', 'bare libp2p stream (Noise+yamux)']]
const table = new Map<string, Row[]>()
const ratios = new Map<string, number[]>()
for (let round = 0; round < rounds; round++) {
  process.stderr.write(`round ${round + 1}/${rounds}…\n`)
  const rows: Row[] = [await fetchOnce(true), await fetchOnce(false)]
  for (const [mode, name] of BASELINES) {
    const b = await runBaseline(mode, Math.round(sizeGiB * GiB))
    rows.push({ name, gibps: b.gibps, recvCpu: b.recvCpuPerGiB, sendCpu: b.sendCpuPerGiB })
  }
  const tcp = rows.find(r => r.name === 'raw TCP')!.gibps
  for (const r of rows) {
    table.set(r.name, [...table.get(r.name) ?? [], r])
    ratios.set(r.name, [...ratios.get(r.name) ?? [], r.gibps / tcp])
  }
}
const lines = [`\n(1) one host, ${sizeGiB} GiB model, medians of ${rounds} interleaved rounds (output on ${outRoot})`, '  path                                      GiB/s   ÷ raw TCP   recv CPU-s/GiB   send CPU-s/GiB   peak RSS']
for (const [name, rows] of table) {
  const rss = rows[0]!.rssMiB === undefined ? '' : `${median(rows.map(r => r.rssMiB!)).toFixed(0)} MiB`
  lines.push(`  ${name.padEnd(40)} ${median(rows.map(r => r.gibps)).toFixed(3).padStart(6)}   ${median(ratios.get(name)!).toFixed(3).padStart(8)}   ${median(rows.map(r => r.recvCpu)).toFixed(2).padStart(14)}   ${median(rows.map(r => r.sendCpu)).toFixed(2).padStart(14)}   ${rss}`)
}
process.stdout.write(lines.join('\n') + '\n')

// (2) Many hosts at once.
const small = (await seederVersions(seeder.admin)).find(v => v.name === 'bench-small')!
const before = small.egressBytes as number
const dir = join(outRoot, 'modelswarm-bench-swarm-hosts')
await rm(dir, { recursive: true, force: true })
await mkdir(dir, { recursive: true })
const t0 = performance.now()
const procs: Proc[] = Array.from({ length: hosts }, (_, i) => startFetch(seeder, join(dir, `h${i}`), ['--linger', '10m'], 'bench-small'))
const results = await Promise.all(procs.map(p => p.waitFor(m => m.ok === true, 600_000)))
const wall = (performance.now() - t0) / 1000
const after = (await seederVersions(seeder.admin)).find(v => v.name === 'bench-small')!
await Promise.all(procs.map(p => p.kill('SIGTERM')))
const F = small.bytes as number
process.stdout.write([
  `\n(2) 1 seeder + ${hosts} hosts, ${(F / MiB).toFixed(0)} MiB model (${small.chunks} chunks), all started together`,
  `  wall time (start → last host complete): ${wall.toFixed(2)} s; per host ${results.map(r => r.seconds.toFixed(1)).join(' ')} s`,
  `  seeder egress: ${((after.egressBytes - before) / F).toFixed(2)} × model size (N·F would be ${hosts}.00)`,
  `  peak RSS per host: max ${Math.max(...results.map(r => r.peakRssBytes / MiB)).toFixed(0)} MiB`
].join('\n') + '\n')
await rm(dir, { recursive: true, force: true })
await seeder.kill('SIGTERM')
