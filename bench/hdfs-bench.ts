/**
 * The seeder's pull from a real HDFS (MiniDFSCluster on loopback), printed, never asserted:
 *  (a) a plain ranged read of a 1 GiB file with our WebHDFS client (one OPEN, bytes discarded);
 *  (b) the seeder's unshaped pull of the same file as a version (`modelswarm seed --hdfs`, parallel
 *      ranged reads, SHA-256 per chunk, written to its cache), from publish to the pull's end, and the
 *      seeder's CPU time per GiB meanwhile;
 *  runs interleaved, medians and their ratio (goal ≥ 0.9), in two CPU layouts, each on a fresh
 *  MiniDFSCluster: `shared` (the DataNode JVM and the reader share both cores, as everything on this
 *  box does) and `pinned` (the JVM on CPU 0 from its start, the reader — this process or the seeder —
 *  on CPU 1: HDFS on another host, as in production, where the seeder's SHA-256 does not take cycles
 *  from the DataNode);
 *  (c) a pull with `--line-rate` of a version published once sampling runs: bytes read from HDFS (the
 *      client's HTTP-layer counter, sampled every 10 ms through the admin API, timed by the seeder's
 *      clock) in each whole second from the first byte, and each second's deviation from the budget
 *      (goal within ±3 %, none above).
 *
 *   npm run bench:hdfs
 *   MODELSWARM_BENCH_MIB=2048 MODELSWARM_BENCH_RUNS=9 MODELSWARM_BENCH_RATE=200MiB/s MODELSWARM_BENCH_LAYOUTS=pinned npm run bench:hdfs
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebHdfsClient } from '../src/origins/hdfs/webhdfs-client.ts'
import { formatRate, parseRate } from '../src/util/units.ts'
import { startMiniHdfs, type MiniHdfs } from '../test/hdfs/mini-hdfs.ts'
import { models, startHdfsSeeder } from '../test/hdfs/seeder-process.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const SIZE = Number(process.env.MODELSWARM_BENCH_MIB ?? 1024) * MiB
const RUNS = Number(process.env.MODELSWARM_BENCH_RUNS ?? 5)
const RATE_TEXT = process.env.MODELSWARM_BENCH_RATE ?? '100MiB/s'
const CHUNK = '32MiB'
const PATH = '/bench/m/v1/weights.bin'
const LAYOUTS = (process.env.MODELSWARM_BENCH_LAYOUTS ?? 'shared,pinned').split(',').filter(l => l !== '')

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const gibps = (bytes: number, seconds: number): string => `${(bytes / seconds / 1024 ** 3).toFixed(3)} GiB/s`

/** One OPEN of the whole file; with `hash`, also SHA-256 of the bytes (the work a pull cannot skip). */
async function plainRead (hdfs: MiniHdfs, path: string, hash = false): Promise<number> {
  const client = new WebHdfsClient({ namenodes: hdfs.namenodes, user: 'root' })
  const start = performance.now()
  const h = createHash('sha256')
  let got = 0
  for await (const block of client.open(path, { offset: 0, length: SIZE })) {
    got += block.length
    if (hash) h.update(block)
  }
  h.digest()
  const seconds = (performance.now() - start) / 1000
  client.close()
  if (got !== SIZE) throw new Error(`plain read got ${got} bytes`)
  return seconds
}

/** The seeder process's CPU time (user + system) so far, in seconds. */
function cpuSeconds (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/**
 * Publishes the version under `root` (writes its marker) once a fresh seeder is up, so neither the
 * seeder's start nor a missed first byte counts; returns the seconds from publication to the end of the
 * pull as the seeder logs them, and the seeder's CPU time meanwhile. `sample` is called every 10 ms.
 */
async function seederPull (
  hdfs: MiniHdfs, work: string, run: string, root: string, extra: string[] = [], sample?: (bytes: number, at: number) => void
): Promise<{ seconds: number, cpuSeconds: number }> {
  const cacheDir = join(work, `seeder-${run}`)
  await hdfs.command(`delete ${root}/m/v1/_SUCCESS`)
  const seeder = await startHdfsSeeder(hdfs, { root, cacheDir, user: 'root', extra: ['--chunk-size', CHUNK, '--log-level', 'info', ...extra] })
  try {
    const cpu0 = cpuSeconds(seeder.proc.pid!)
    await hdfs.command(`touch ${root}/m/v1/_SUCCESS`)
    while (sample !== undefined && !seeder.stderr.some(m => m.msg === 'version pulled')) {
      const { line } = await models(seeder.admin)
      sample(line.originBytesRead as number, line.at as number)
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    const done = await seeder.waitFor(m => m.msg === 'version pulled', 600_000)
    const cpu = cpuSeconds(seeder.proc.pid!) - cpu0
    if (done.bytesRead !== SIZE) throw new Error(`seeder read ${done.bytesRead} bytes, expected ${SIZE}`)
    return { seconds: done.seconds as number, cpuSeconds: cpu }
  } finally {
    await seeder.kill('SIGTERM')
    await rm(cacheDir, { recursive: true, force: true })
  }
}

/**
 * Bytes per whole second from (time, counter) samples, interpolated at second boundaries, from the first
 * sample that saw bytes (at most 10 ms after the first byte, which the first bin would otherwise count
 * as idle time).
 */
function perSecond (samples: Array<[number, number]>): number[] {
  const start = samples.findIndex(([, b]) => b > 0)
  if (start < 1) return []
  const t0 = samples[start]![0]
  const at = (t: number): number => {
    const i = samples.findIndex(([ts]) => ts >= t)
    if (i <= 0) return samples[Math.max(0, i)]![1]
    const [ta, ba] = samples[i - 1]!
    const [tb, bb] = samples[i]!
    return ba + (bb - ba) * (t - ta) / (tb - ta)
  }
  const out: number[] = []
  const last = samples.at(-1)![0]
  for (let s = 0; t0 + (s + 1) * 1000 <= last; s++) out.push(at(t0 + (s + 1) * 1000) - at(t0 + s * 1000))
  // The last whole second may include the pull's tail; only seconds fully inside the pull count.
  return samples.at(-1)![1] >= SIZE ? out.slice(0, -1) : out
}

/** CPUs of the DataNode JVM and of the reader (this process and the seeders it starts) in each layout. */
const CPUS: Record<string, [string, string]> = { shared: ['0-1', '0-1'], pinned: ['0', '1'] }

/** Sets this process's CPU affinity (every thread; children inherit it); false when it cannot be set here. */
function setAffinity (cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' })
    return true
  } catch (err) {
    console.log(`cannot set CPU affinity (${(err as Error).message})`)
    return false
  }
}

/**
 * A MiniDFSCluster whose JVM runs on `jvmCpus` from its start (so it sizes its thread pools for them),
 * holding the 1 GiB file; this process is then moved to `readerCpus`. Each layout gets a fresh one: a
 * JVM that ran another layout first gave different figures. The DataNode is warmed by two plain reads
 * and a seeder pull: its JIT takes several GiB to settle (DataNode CPU per GiB served fell from 4.0 to
 * 1.6 s over the first six pulls), which otherwise favours whichever kind of read comes later.
 */
async function hdfsFor (jvmCpus: string, readerCpus: string): Promise<MiniHdfs | undefined> {
  if (!setAffinity(jvmCpus)) return undefined
  const hdfs = await startMiniHdfs()
  try {
    if (!setAffinity(readerCpus)) throw new Error('cannot set CPU affinity')
    const wrote = await hdfs.command(`write ${PATH} ${SIZE} 7`)
    console.log(`MiniDFSCluster (JVM on CPUs ${jvmCpus}, reader on ${readerCpus}), 1 DataNode, loopback; file ${SIZE / MiB} MiB written in ${Number(wrote.millis) / 1000} s; chunk ${CHUNK}, 4 parallel reads`)
    await plainRead(hdfs, PATH)
    await plainRead(hdfs, PATH)
    await seederPull(hdfs, work, 'warm-up', '/bench')
    return hdfs
  } catch (err) {
    await hdfs.stop()
    throw err
  }
}

// The seeder's cache goes to tmpfs unless told otherwise: this VM's disk absorbs writes at ≈ 0.4 GB/s,
// which would measure the disk rather than the pull (MODELSWARM_BENCH_CACHE=/path to include a disk).
const work = await mkdtemp(join(process.env.MODELSWARM_BENCH_CACHE ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir()), 'ms-hdfs-bench-'))
console.log(`seeder cache in ${work}`)
try {
  for (const layout of LAYOUTS) {
    const cpus = CPUS[layout]
    if (cpus === undefined) throw new Error(`unknown layout ${layout}: shared or pinned`)
    const hdfs = await hdfsFor(...cpus)
    if (hdfs === undefined) continue
    try {
      const plain: number[] = []
      const hashed: number[] = []
      const pull: number[] = []
      const cpu: number[] = []
      for (let r = 0; r < RUNS; r++) {
        plain.push(await plainRead(hdfs, PATH))
        hashed.push(await plainRead(hdfs, PATH, true))
        const p = await seederPull(hdfs, work, `unshaped-${r}`, '/bench')
        pull.push(p.seconds)
        cpu.push(p.cpuSeconds / (SIZE / GiB))
        console.log(`${layout} run ${r + 1}: plain read ${gibps(SIZE, plain.at(-1)!)}, plain read + SHA-256 ${gibps(SIZE, hashed.at(-1)!)}, seeder pull ${gibps(SIZE, pull.at(-1)!)} using ${cpu.at(-1)!.toFixed(2)} CPU-s/GiB`)
      }
      const ratio = median(plain) / median(pull)
      console.log(`${layout}, medians of ${RUNS}: plain read ${gibps(SIZE, median(plain))} (${median(plain).toFixed(2)} s), plain read + SHA-256 ${gibps(SIZE, median(hashed))}, seeder pull ${gibps(SIZE, median(pull))} (${median(pull).toFixed(2)} s, seeder ${median(cpu).toFixed(2)} CPU-s/GiB); pull ÷ plain = ${ratio.toFixed(2)} (goal ≥ 0.9), pull ÷ (read + SHA-256) = ${(median(hashed) / median(pull)).toFixed(2)}`)
    } finally {
      await hdfs.stop()
    }
  }

  setAffinity(CPUS.shared![0])
  const hdfs = await startMiniHdfs()
  try {
    const rate = parseRate(RATE_TEXT)
    const samples: Array<[number, number]> = []
    await hdfs.command(`write /bench-shaped/m/v1/weights.bin ${SIZE} 7`)
    const { seconds } = await seederPull(hdfs, work, 'shaped', '/bench-shaped', ['--line-rate', RATE_TEXT], (bytes, at) => samples.push([at, bytes]))
    const bins = perSecond(samples)
    const deviations = bins.map(b => (b - rate) / rate * 100)
    console.log(`--line-rate ${RATE_TEXT}: pull took ${seconds.toFixed(2)} s (average ${formatRate(SIZE / seconds)}); per second (MiB): ${bins.map(b => (b / MiB).toFixed(1)).join(' ')}`)
    console.log(`deviation from the budget per second: ${deviations.map(d => `${d >= 0 ? '+' : ''}${d.toFixed(1)}%`).join(' ')}; max |dev| ${Math.max(...deviations.map(Math.abs)).toFixed(1)}%, max above ${Math.max(0, ...deviations).toFixed(1)}% (goal ±3 %, none above)`)
  } finally {
    await hdfs.stop()
  }
} finally {
  await rm(work, { recursive: true, force: true })
}
