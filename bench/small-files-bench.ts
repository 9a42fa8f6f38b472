/**
 * npm run bench:small-files [-- --files 5000 --rounds 3]
 * A version of many small files (1–4 KiB each, ~12.5 MB for 5,000, the shape of a tokenizer or a sharded
 * vocabulary) against the same bytes as one file, one host fetching from a seeder that holds both, over
 * the bulk path (default) and libp2p streams, interleaved. Prints medians and many ÷ one (goal ≤ 2).
 * Beside them, in the same rounds, the floor any durable copy pays: the same files written locally (create,
 * write, fdatasync, close, 16 at a time, as the chunk store does), so what the filesystem costs per file is
 * told apart from what modelswarm does.
 * Before the bulk server sent without Nagle delay, 5,000 files took 60–75 s here against 1.7 s as one file;
 * with one chunk per file (manifest format 2), 3.7 s against 0.24 s (15.7×).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pMap from 'p-map'
import { seederVersions, startFetch, startSeeder } from '../test/support/cli.ts'

const { values: args } = parseArgs({ options: { files: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '3' } } })
const files = Number(args.files)
const rounds = Number(args.rounds)
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const root = join(tmpdir(), 'modelswarm-bench-small-files')
await rm(root, { recursive: true, force: true })
const origin = join(root, 'origin')
const many = join(origin, 'many', 'v1')
const one = join(origin, 'one', 'v1')
await mkdir(many, { recursive: true })
await mkdir(one, { recursive: true })
const parts: Buffer[] = []
for (let i = 0; i < files; i++) {
  const b = randomBytes(1024 + Math.floor(Math.random() * 3072))
  parts.push(b)
  await writeFile(join(many, `part-${String(i).padStart(5, '0')}.bin`), b)
}
await writeFile(join(one, 'all.bin'), Buffer.concat(parts))
await writeFile(join(many, '_SUCCESS'), '')
await writeFile(join(one, '_SUCCESS'), '')
const bytes = parts.reduce((s, b) => s + b.length, 0)
process.stderr.write(`${files} files, ${bytes} bytes, and the same bytes as one file\n`)

const seeder = await startSeeder({ root, origin, source: '', name: 'many', version: 'v1', size: bytes })
for (;;) {
  const vs = await seederVersions(seeder.admin)
  if (vs.length === 2 && vs.every(v => v.state === 'ready')) break
  await new Promise(resolve => setTimeout(resolve, 300))
}

async function fetchSeconds (model: string, bulk: boolean): Promise<number> {
  const out = join(root, 'host')
  await rm(out, { recursive: true, force: true })
  await rm(`${out}.modelswarm`, { recursive: true, force: true })
  const f = startFetch(seeder, out, bulk ? [] : ['--no-bulk'], model)
  const r = await f.waitFor(m => m.ok === true, 600_000)
  await f.exited
  return r.seconds as number
}

/** Seconds to write `bufs` as files into a fresh directory, durably, 16 at a time. */
async function floorSeconds (bufs: Buffer[]): Promise<number> {
  const dir = join(root, 'floor')
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir)
  const started = performance.now()
  await pMap(bufs.entries(), async ([i, b]) => {
    const fh = await open(join(dir, String(i)), 'w')
    try {
      await fh.write(b, 0, b.length, 0)
      await fh.datasync()
    } finally {
      await fh.close()
    }
  }, { concurrency: 16 })
  return (performance.now() - started) / 1000
}

const times = new Map<string, number[]>()
const whole = Buffer.concat(parts)
for (let round = 0; round < rounds; round++) {
  times.set('many floor', [...times.get('many floor') ?? [], await floorSeconds(parts)])
  times.set('one floor', [...times.get('one floor') ?? [], await floorSeconds([whole])])
  for (const bulk of [true, false]) {
    for (const model of ['many', 'one']) {
      const key = `${model} ${bulk ? 'bulk' : 'libp2p'}`
      times.set(key, [...times.get(key) ?? [], await fetchSeconds(model, bulk)])
    }
  }
}
await seeder.kill()
await rm(root, { recursive: true, force: true })
const lines = ['| path | many files (s) | one file (s) | many ÷ one (goal ≤ 2) |', '|---|---|---|---|']
for (const path of ['bulk', 'libp2p', 'floor']) {
  const m = median(times.get(`many ${path}`)!)
  const o = median(times.get(`one ${path}`)!)
  lines.push(`| ${path} | ${m.toFixed(2)} | ${o.toFixed(2)} | ${(m / o).toFixed(2)} |`)
}
process.stdout.write(`fetch of ${files} files of 1–4 KiB (${(bytes / 1e6).toFixed(1)} MB), medians of ${rounds}, fetch's own clock (process start excluded); ` +
  `floor: the same files written locally and synced\n${lines.join('\n')}\n`)
