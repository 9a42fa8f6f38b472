/**
 * Checks the npm `webhdfs` package (named by the design card) against our WebHdfsClient on a real HDFS:
 * a 1 GiB file read once by a consumer paced well below HDFS speed (peak RSS shows whether backpressure
 * reaches the socket) and once by a consumer that keeps up (throughput, CPU per GiB).
 * Each read runs in a fresh child process, so peak RSS (getrusage maxrss) belongs to that read alone.
 *
 *   npm run bench:webhdfs-npm                       # from the repository root
 *   MODELSWARM_BENCH_MIB=2048 npm run bench:webhdfs-npm
 */
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { promisify } from 'node:util'
import { WebHdfsClient } from '../src/origins/hdfs/webhdfs-client.ts'
import { startMiniHdfs } from '../test/hdfs/mini-hdfs.ts'

const MiB = 1024 * 1024
const SLOW_MIB_PER_S = 100
const PATH = '/bench/file.bin'
/** npm-webhdfs-no-follow: the package's own 307 handling (request's followRedirect off), the emit('data') path. */
type Reader = 'npm-webhdfs' | 'npm-webhdfs-no-follow' | 'WebHdfsClient'
type Pace = 'slow' | 'fast'

/** The part of webhdfs@1.2.0's untyped API used here. */
interface NpmWebHdfs {
  createClient: (opts: { user: string, host: string, port: number, path: string }, requestParams?: { followRedirect: boolean }) => {
    createReadStream: (path: string) => NodeJS.ReadableStream & { on: (event: 'error', cb: (err: Error) => void) => unknown }
  }
}

/** A sink that accepts bytes at most `mibPerS` MiB/s (Infinity: as fast as they come). */
function sink (mibPerS: number): { writable: Writable, bytes: () => number } {
  const start = performance.now()
  let bytes = 0
  const writable = new Writable({
    highWaterMark: MiB,
    write (chunk: Buffer, _encoding, callback) {
      bytes += chunk.length
      const ahead = start + (bytes / MiB / mibPerS) * 1000 - performance.now()
      // Timers cost ≥ 1 ms each: sleep only when ahead of schedule, or the pace drops far below mibPerS.
      if (ahead >= 1) setTimeout(callback, ahead)
      else callback()
    }
  })
  return { writable, bytes: () => bytes }
}

async function child (reader: Reader, pace: Pace, namenode: string, size: number): Promise<void> {
  const { writable, bytes } = sink(pace === 'slow' ? SLOW_MIB_PER_S : Infinity)
  const rssBefore = process.memoryUsage.rss()
  const cpuBefore = process.cpuUsage()
  const t0 = performance.now()
  if (reader !== 'WebHdfsClient') {
    const webhdfs = createRequire(import.meta.url)('webhdfs') as NpmWebHdfs
    const url = new URL(namenode)
    const source = webhdfs.createClient({ user: 'root', host: url.hostname, port: Number(url.port), path: '/webhdfs/v1' },
      reader === 'npm-webhdfs-no-follow' ? { followRedirect: false } : undefined).createReadStream(PATH)
    await new Promise<void>((resolve, reject) => {
      source.on('error', reject)
      writable.on('finish', resolve).on('error', reject)
      source.pipe(writable)
    })
  } else {
    const client = new WebHdfsClient({ namenodes: [namenode], user: 'root' })
    await pipeline(Readable.from(client.open(PATH, { length: size })), writable)
    client.close()
  }
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  console.log(JSON.stringify({
    reader,
    pace,
    bytes: bytes(),
    seconds: +seconds.toFixed(2),
    gibPerS: +(bytes() / 1024 ** 3 / seconds).toFixed(2),
    cpuSecondsPerGiB: +((cpu.user + cpu.system) / 1e6 / (bytes() / 1024 ** 3)).toFixed(2),
    rssBeforeMiB: Math.round(rssBefore / MiB),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024)
  }))
}

async function main (): Promise<void> {
  const size = Number(process.env.MODELSWARM_BENCH_MIB ?? 1024) * MiB
  console.error(`starting MiniDFSCluster, writing ${size / MiB} MiB…`)
  const hdfs = await startMiniHdfs()
  try {
    await hdfs.writeFile(PATH, size, 1)
    const rows: unknown[] = []
    for (const pace of ['slow', 'fast'] as const) {
      for (const reader of ['npm-webhdfs', 'npm-webhdfs-no-follow', 'WebHdfsClient'] as const) {
        console.error(`${reader}, ${pace} consumer…`)
        const { stdout } = await promisify(execFile)(process.execPath,
          [import.meta.filename, 'child', reader, pace, hdfs.namenodes[0]!, String(size)], { maxBuffer: 1 << 20 })
        rows.push(JSON.parse(stdout))
      }
    }
    // Reference without Node: curl following the same 307 (FACTS.md measured ≈ 0.75 GiB/s on an idle box).
    const { stdout } = await promisify(execFile)('curl', ['-sSL', '-o', '/dev/null', '-w', '%{time_total} %{size_download}',
      `${hdfs.namenodes[0]}/webhdfs/v1${PATH}?op=OPEN&user.name=root`])
    const [seconds, bytes] = stdout.split(' ').map(Number) as [number, number]
    rows.push({ reader: 'curl -L', pace: 'fast', bytes, seconds, gibPerS: +(bytes / 1024 ** 3 / seconds).toFixed(2) })
    console.table(rows)
    console.log(JSON.stringify({ sizeMiB: size / MiB, slowConsumerMiBPerS: SLOW_MIB_PER_S, rows }))
  } finally {
    await hdfs.stop()
  }
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] as Reader, process.argv[4] as Pace, process.argv[5]!, Number(process.argv[6]))
} else {
  await main()
}
