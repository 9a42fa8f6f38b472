/**
 * `modelswarm demo`: a whole swarm on loopback, as separate processes — a generated model in a local
 * origin, one seeder, N fetchers — then a report: time, seeder egress ÷ model size, what each host
 * uploaded, and every output compared byte for byte with the source.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hashFileRange, listModelFiles } from '../chunker/chunk-hasher.ts'
import { ModelswarmError } from '../errors.ts'
import { formatBytes } from '../util/units.ts'
import { SWARM_MSG } from '../peer/swarm-log.ts'
import { generateModel } from './demo-model.ts'
import { exitDescription } from '../util/process-exit.ts'

export interface DemoOptions {
  hosts: number
  size: number
  lineRate?: number
  dir?: string
  logLevel: string
}

const BIN = fileURLToPath(new URL('../../bin/modelswarm.js', import.meta.url))
const MODEL = { name: 'demo-llm', version: 'v1' }

interface Host {
  proc: ChildProcess
  out: string
  pct: number
  result?: { seconds: number, bytes: number }
  bytesUp?: number
  exit?: Promise<number | null>
}

export async function runDemo (opts: DemoOptions): Promise<void> {
  const started = Date.now()
  const dir = opts.dir ?? await mkdtemp(join(tmpdir(), 'modelswarm-demo-'))
  const say = (s: string): void => { process.stderr.write(s + '\n') }
  const procs: ChildProcess[] = []
  try {
    const source = join(dir, 'origin', MODEL.name, MODEL.version)
    say(`demo: generating a ${formatBytes(opts.size)} model in ${source}`)
    await generateModel(source, opts.size)
    await writeFile(join(source, '_SUCCESS'), '')

    const seeder = spawnCli(['seed', '--origin', join(dir, 'origin'), '--cache-dir', join(dir, 'seeder'), '--listen', '/ip4/127.0.0.1/tcp/0', '--admin', '127.0.0.1:0', '--poll-interval', '1s', '--json', ...(opts.lineRate === undefined ? [] : ['--line-rate', `${opts.lineRate}B/s`])], opts.logLevel)
    procs.push(seeder)
    const info = JSON.parse(await firstLine(seeder)) as { peerId: string, addrs: string[], admin: string }
    say(`demo: seeder ${info.peerId} at ${info.addrs[0]}${opts.lineRate === undefined ? '' : `, origin line limited to ${formatBytes(opts.lineRate)}/s`}`)

    const t0 = Date.now()
    const hosts: Host[] = []
    for (let i = 0; i < opts.hosts; i++) {
      const out = join(dir, 'hosts', `host-${i}`, 'model')
      await mkdir(join(out, '..'), { recursive: true })
      const proc = spawnCli(['fetch', MODEL.name, '--out', out, '--bootstrap', info.addrs[0]!, '--trust', info.peerId, '--listen', '/ip4/127.0.0.1/tcp/0', '--json', '--linger', '1h'], 'info')
      procs.push(proc)
      const host: Host = { proc, out, pct: 0 }
      host.exit = new Promise(resolve => proc.once('exit', code => resolve(code)))
      onJsonLines(proc.stdout!, m => { if (m.ok === true) host.result = { seconds: m.seconds as number, bytes: m.bytes as number } })
      onJsonLines(proc.stderr!, m => {
        if (m.event === 'progress') host.pct = Math.floor((m.bytes as number) * 100 / Math.max(1, m.total as number))
        if (m.msg === SWARM_MSG.stoppedSeeding) host.bytesUp = m.bytesUp as number
      })
      hosts.push(host)
    }
    say(`demo: ${opts.hosts} fetch processes started`)

    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const done = hosts.filter(h => h.result !== undefined).length
        const failed = hosts.find(h => exitDescription(h.proc) !== undefined && h.result === undefined)
        say(`demo: ${((Date.now() - t0) / 1000).toFixed(1)}s  done ${done}/${hosts.length}  [${hosts.map(h => h.result !== undefined ? '100' : String(h.pct).padStart(3)).join(' ')}] %`)
        if (failed !== undefined) {
          clearInterval(timer)
          reject(new ModelswarmError('MS_DEMO', `a fetch process ended before completing (${exitDescription(failed.proc)})`))
        } else if (done === hosts.length) {
          clearInterval(timer)
          resolve()
        }
      }, 1000)
    })
    const wall = (Date.now() - t0) / 1000
    const models = await (await fetch(`${info.admin}/v1/models`)).json() as { versions: Array<{ egressBytes: number, bytes: number, bytesPulled: number }> }
    const v = models.versions[0]!
    for (const h of hosts) h.proc.kill('SIGTERM')
    await Promise.all(hosts.map(h => h.exit))

    say('demo: verifying every output against the source…')
    const expected = await fileDigests(source)
    // The origin's completion marker is not part of the model.
    expected.delete('_SUCCESS')
    const verified = await Promise.all(hosts.map(async h => sameDigests(expected, await fileDigests(h.out))))

    const F = v.bytes
    const lines = [
      '',
      `modelswarm demo — ${opts.hosts} hosts, model ${formatBytes(F)} (${expected.size} files)`,
      `  wall time (first fetch start → last host complete): ${wall.toFixed(2)} s`,
      `  origin → seeder: ${formatBytes(v.bytesPulled)} (${(v.bytesPulled / F).toFixed(3)} × model size)`,
      `  seeder egress:   ${formatBytes(v.egressBytes)} = ${(v.egressBytes / F).toFixed(2)} × model size (a server-only design sends ${opts.hosts}.00 ×)`,
      '  host  time(s)  uploaded    verified'
    ]
    hosts.forEach((h, i) => lines.push(`  ${String(i).padStart(4)}  ${h.result!.seconds.toFixed(2).padStart(7)}  ${formatBytes(h.bytesUp ?? 0).padStart(10)}  ${verified[i] === true ? 'yes' : 'NO'}`))
    lines.push(`  total uploaded by hosts: ${formatBytes(hosts.reduce((s, h) => s + (h.bytesUp ?? 0), 0))}`)
    lines.push(verified.every(Boolean) ? '  all outputs byte-identical to the source ✔' : '  SOME OUTPUTS DIFFER ✘')
    lines.push(`  total demo time ${((Date.now() - started) / 1000).toFixed(1)} s${opts.dir === undefined ? '' : `; files kept in ${dir}`}`)
    process.stdout.write(lines.join('\n') + '\n')
    if (!verified.every(Boolean)) process.exitCode = 1
  } finally {
    for (const p of procs) if (exitDescription(p) === undefined) p.kill('SIGTERM')
    await Promise.all(procs.map(p => exitDescription(p) === undefined ? new Promise(resolve => p.once('exit', resolve)) : undefined))
    if (opts.dir === undefined) await rm(dir, { recursive: true, force: true })
  }
}

function spawnCli (args: string[], logLevel: string): ChildProcess {
  return spawn(process.execPath, [BIN, '--log-level', logLevel, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
}

function firstLine (proc: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! })
    let stderr = ''
    proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
    rl.once('line', line => { rl.close(); resolve(line) })
    proc.once('exit', () => reject(new ModelswarmError('MS_DEMO', `seeder ended (${exitDescription(proc)}): ${stderr}`)))
  })
}

function onJsonLines (stream: NodeJS.ReadableStream, on: (m: Record<string, unknown>) => void): void {
  createInterface({ input: stream }).on('line', line => {
    try {
      on(JSON.parse(line) as Record<string, unknown>)
    } catch { /* not JSON: a human line */ }
  })
}

async function fileDigests (dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const f of await listModelFiles(dir)) {
    out.set(f.path, (await hashFileRange(join(dir, f.path), 0, f.size)).toString('hex'))
  }
  return out
}

function sameDigests (want: Map<string, string>, got: Map<string, string>): boolean {
  return want.size === got.size && [...want].every(([p, d]) => got.get(p) === d)
}
