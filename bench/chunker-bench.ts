/**
 * npm run bench:chunker [-- SIZE_GIB]
 * Chunk-and-hash throughput of a generated multi-GiB model against plain SHA-256 of the same bytes,
 * each in its own process (so peak RSS is its own), interleaved, medians of 3 runs.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { listModelFiles, manifestFromDirectory } from '../src/chunker/chunk-hasher.ts'
import { generateModel } from '../src/cli/demo-model.ts'

const GiB = 2 ** 30
const mode = process.argv[2]

interface RunResult { seconds: number, bytes: number, cpuSeconds: number, maxRssMiB: number, chunks?: number }

async function plainSha256 (dir: string): Promise<number> {
  const buf = Buffer.allocUnsafe(1024 * 1024)
  let bytes = 0
  for (const f of await listModelFiles(dir)) {
    const h = createHash('sha256')
    const fh = await open(join(dir, f.path), 'r')
    for (let pos = 0; pos < f.size;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
      h.update(buf.subarray(0, bytesRead))
      pos += bytesRead
    }
    await fh.close()
    h.digest()
    bytes += f.size
  }
  return bytes
}

async function child (which: string, dir: string): Promise<void> {
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  let bytes: number
  let chunks: number | undefined
  if (which === 'plain') bytes = await plainSha256(dir)
  else {
    const m = await manifestFromDirectory(dir, { name: 'bench', version: '1' })
    bytes = m.files.reduce((s, f) => s + f.size, 0)
    chunks = m.chunks.length
  }
  const cpu = process.cpuUsage(cpu0)
  const result: RunResult = {
    seconds: (performance.now() - t0) / 1000,
    bytes,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    chunks
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

function run (which: string, dir: string): RunResult {
  const r = spawnSync(process.execPath, [import.meta.filename, which, dir], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${which} run failed: ${r.stderr}`)
  return JSON.parse(r.stdout) as RunResult
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main (): Promise<void> {
  const sizeGiB = Number(process.argv[2] ?? process.env.MODELSWARM_BENCH_GIB ?? 3)
  const dir = join(tmpdir(), `modelswarm-bench-model-${sizeGiB}g`)
  process.stderr.write(`generating ${sizeGiB} GiB model in ${dir} (reused across runs)…\n`)
  await generateModel(dir, Math.round(sizeGiB * GiB))
  run('plain', dir) // warm the page cache so both sides read from memory
  const plain: RunResult[] = []
  const chunker: RunResult[] = []
  for (let i = 0; i < 3; i++) {
    plain.push(run('plain', dir))
    chunker.push(run('chunker', dir))
  }
  const gibps = (r: RunResult): number => r.bytes / GiB / r.seconds
  const p = median(plain.map(gibps))
  const c = median(chunker.map(gibps))
  const ratios = plain.map((pr, i) => gibps(chunker[i]!) / gibps(pr))
  const bytes = chunker[0]!.bytes
  console.log(`model: ${(bytes / GiB).toFixed(2)} GiB, ${chunker[0]!.chunks} chunks of ${(bytes / chunker[0]!.chunks! / 2 ** 20).toFixed(1)} MiB avg`)
  console.log(`plain SHA-256         ${p.toFixed(2)} GiB/s  cpu ${median(plain.map(r => r.cpuSeconds / (r.bytes / GiB))).toFixed(2)} s/GiB  peak RSS ${median(plain.map(r => r.maxRssMiB)).toFixed(0)} MiB`)
  console.log(`chunk-and-hash        ${c.toFixed(2)} GiB/s  cpu ${median(chunker.map(r => r.cpuSeconds / (r.bytes / GiB))).toFixed(2)} s/GiB  peak RSS ${median(chunker.map(r => r.maxRssMiB)).toFixed(0)} MiB (max ${Math.max(...chunker.map(r => r.maxRssMiB)).toFixed(0)})`)
  console.log(`ratio chunk-and-hash / plain, per pair: ${ratios.map(r => r.toFixed(3)).join(' ')}; median ${median(ratios).toFixed(3)} (goal ≥ 0.8)`)
}

if (mode === 'plain' || mode === 'chunker') await child(mode, process.argv[3]!)
else await main()
