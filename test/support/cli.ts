/**
 * Real `modelswarm` processes for integration tests: each command runs as its own Node process through
 * the same bin a user runs, and tests read its JSON output.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, expect } from 'vitest'
import { hashFileRange, listModelFiles } from '../../src/chunker/chunk-hasher.ts'
import { generateModel } from '../../src/cli/demo-model.ts'
import { tempDir } from './temp.ts'
import { exitDescription } from '../../src/util/process-exit.ts'

export const BIN = fileURLToPath(new URL('../../bin/modelswarm.js', import.meta.url))

export interface Proc {
  proc: ChildProcess
  /** Parsed JSON lines from stdout and stderr, as they arrive. */
  stdout: Array<Record<string, any>>
  stderr: Array<Record<string, any>>
  /** Non-JSON stderr text (error messages). */
  text: string[]
  exited: Promise<number | null>
  /** Resolves with the first line matching `pred` (on stdout or stderr). */
  waitFor: (pred: (m: Record<string, any>) => boolean, timeoutMs?: number) => Promise<Record<string, any>>
  kill: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * Registers a process to be SIGKILLed after each test of the file (a file-level afterEach registered when
 * this module loads), so a failed test never leaves a seeder or a fetch running.
 */
export function track<T extends Proc> (p: T): T {
  tracked.push(p)
  return p
}
const tracked: Proc[] = []
/** SIGKILLs the tracked processes now (a test that must unmount or remove something they use first). */
export async function killTracked (): Promise<void> {
  await Promise.all(tracked.splice(0).map(p => p.kill('SIGKILL')))
}
// Benchmarks share these helpers outside vitest; their processes die with them (below).
if (process.env.VITEST !== undefined) afterEach(killTracked)

const live = new Set<ChildProcess>()
process.on('exit', () => { for (const p of live) p.kill('SIGKILL') })

/** `netns`: run inside that network namespace (`ip netns exec`, root only). */
export function run (args: string[], opts: { env?: Record<string, string>, script?: string, netns?: string } = {}): Proc {
  const argv = [process.execPath, opts.script ?? BIN, ...args]
  if (opts.netns !== undefined) argv.unshift('ip', 'netns', 'exec', opts.netns)
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } })
  live.add(proc)
  const p: Proc = {
    proc,
    stdout: [],
    stderr: [],
    text: [],
    exited: new Promise(resolve => proc.once('exit', code => { live.delete(proc); resolve(code) })),
    waitFor: (pred, timeoutMs = 60_000) => new Promise((resolve, reject) => {
      const found = [...p.stdout, ...p.stderr].find(pred)
      if (found !== undefined) return resolve(found)
      const t = setTimeout(() => { clearInterval(iv); reject(new Error(`timed out waiting; stderr tail: ${p.text.slice(-5).join(' | ')} ${JSON.stringify(p.stderr.slice(-3))}`)) }, timeoutMs)
      const iv = setInterval(() => {
        const m = [...p.stdout, ...p.stderr].find(pred)
        if (m !== undefined) { clearTimeout(t); clearInterval(iv); resolve(m) } else if (exitDescription(proc) !== undefined) { clearTimeout(t); clearInterval(iv); reject(new Error(`process ended (${exitDescription(proc)}) while waiting: ${p.text.slice(-5).join(' | ')}`)) }
      }, 50)
    }),
    kill: async (signal = 'SIGTERM') => {
      if (exitDescription(proc) === undefined) proc.kill(signal)
      return p.exited
    }
  }
  const collect = (stream: NodeJS.ReadableStream, into: Array<Record<string, any>>): void => {
    createInterface({ input: stream }).on('line', line => {
      try { into.push(JSON.parse(line)) } catch { p.text.push(line) }
    })
  }
  collect(proc.stdout!, p.stdout)
  collect(proc.stderr!, p.stderr)
  return p
}

export interface TestModel { root: string, origin: string, source: string, name: string, version: string, size: number }

/** A generated model in a local origin, published with _SUCCESS unless `publish` is false. */
export async function makeModel (size: number, opts: { name?: string, version?: string, publish?: boolean } = {}): Promise<TestModel> {
  const root = await tempDir('ms-it-')
  const name = opts.name ?? 'it-llm'
  const version = opts.version ?? 'v1'
  const origin = join(root, 'origin')
  const source = join(origin, name, version)
  await mkdir(source, { recursive: true })
  const m = await generateModel(source, size)
  if (opts.publish !== false) await writeFile(join(source, '_SUCCESS'), '')
  return { root, origin, source, name, version, size: m.totalSize }
}

export interface SeederProc extends Proc { peerId: string, addr: string, admin: string }

export async function startSeeder (model: TestModel, extra: string[] = []): Promise<SeederProc> {
  const p = run(['--log-level', 'info', 'seed', '--origin', model.origin, '--cache-dir', join(model.root, 'seeder'), '--listen', '/ip4/127.0.0.1/tcp/0', '--admin', '127.0.0.1:0', '--poll-interval', '500ms', '--json', ...extra])
  const info = await p.waitFor(m => typeof m.peerId === 'string', 30_000)
  return Object.assign(p, { peerId: info.peerId as string, addr: info.addrs[0] as string, admin: info.admin as string })
}

export function startFetch (seeder: { peerId: string, addr: string }, out: string, extra: string[] = [], model = 'it-llm'): Proc {
  return run(['--log-level', 'info', 'fetch', model, '--out', out, '--bootstrap', seeder.addr, '--trust', seeder.peerId, '--listen', '/ip4/127.0.0.1/tcp/0', '--json', ...extra])
}

export async function seederVersions (admin: string): Promise<Array<Record<string, any>>> {
  return ((await (await fetch(`${admin}/v1/models`)).json()) as { versions: Array<Record<string, any>> }).versions
}

/** sha256 of every file under `dir` (relative path → hex), `_SUCCESS` markers excluded. */
export async function treeDigests (dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const f of await listModelFiles(dir)) {
    if (f.path === '_SUCCESS') continue
    out[f.path] = (await hashFileRange(join(dir, f.path), 0, f.size)).toString('hex')
  }
  return out
}

/** Fetches until done; a fetch that started on the old content ends with exit 4 naming the re-publish, and a rerun gets the new one. */
export async function fetchUntilNew (seeder: { peerId: string, addr: string }, out: string, model = 'it-llm'): Promise<number> {
  let reruns = 0
  for (;;) {
    const f = track(startFetch(seeder, out, ['--timeout', '60s'], model))
    const code = await f.exited
    if (code === 0) return reruns
    expect(code).toBe(4)
    expect(f.text.join('\n')).toMatch(/re-published at the origin/)
    expect(++reruns).toBeLessThan(3)
  }
}
