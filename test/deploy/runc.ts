/**
 * Runs containers from an unpacked OCI image (`umoci unpack`) with runc, the way a kubelet would with the
 * chart's securityContext: the image's own user and entrypoint, a read-only root filesystem, no
 * capabilities, and a network namespace of the test's making (loopback only, no route out).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { runTool } from './tools.ts'
import { exitDescription } from '../../src/util/process-exit.ts'

export interface Mount { source: string, destination: string, readOnly?: boolean }

export interface Container {
  id: string
  proc: ChildProcess
  /** JSON lines from stdout and stderr, and the other lines, as they arrive. */
  json: Array<Record<string, any>>
  text: string[]
  exited: Promise<number | null>
  waitFor: (pred: (m: Record<string, any>) => boolean, timeoutMs?: number) => Promise<Record<string, any>>
  stop: () => Promise<number | null>
}

export interface ImageBundle {
  /** The runtime config umoci derived from the image config (user, entrypoint, env, cwd). */
  config: Record<string, any>
  rootfs: string
  dir: string
}

export async function loadBundle (dir: string): Promise<ImageBundle> {
  return { config: JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, any>, rootfs: join(dir, 'rootfs'), dir }
}

const started = new Set<string>()

/**
 * Starts `args` in a new container sharing `bundle`'s rootfs. `argv` replaces the image's CMD after its
 * ENTRYPOINT, unless `entrypoint` replaces both.
 */
export async function startContainer (
  bundle: ImageBundle, opts: { id: string, workDir: string, netns: string, argv: string[], entrypoint?: string[], mounts?: Mount[], env?: string[] }
): Promise<Container> {
  const config = structuredClone(bundle.config)
  const imageEntrypoint = (config.process.args as string[]).slice(0, 1)
  config.process.args = [...(opts.entrypoint ?? imageEntrypoint), ...opts.argv]
  config.process.terminal = false
  config.process.env = [...(config.process.env as string[]), ...(opts.env ?? [])]
  for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) config.process.capabilities[set] = []
  config.root = { path: bundle.rootfs, readonly: true }
  config.linux.namespaces = (config.linux.namespaces as Array<{ type: string }>).map(ns => ns.type === 'network' ? { type: 'network', path: `/var/run/netns/${opts.netns}` } : ns)
  const targets = new Set((opts.mounts ?? []).map(m => m.destination))
  config.mounts = [
    ...(config.mounts as Array<{ destination: string }>).filter(m => !targets.has(m.destination)),
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=64m'] },
    ...(opts.mounts ?? []).map(m => ({ destination: m.destination, type: 'bind', source: m.source, options: ['rbind', m.readOnly === true ? 'ro' : 'rw'] }))
  ]
  const dir = join(opts.workDir, opts.id)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'config.json'), JSON.stringify(config))
  const proc = spawn('runc', ['run', '--bundle', dir, opts.id], { stdio: ['ignore', 'pipe', 'pipe'] })
  started.add(opts.id)
  const c: Container = {
    id: opts.id,
    proc,
    json: [],
    text: [],
    exited: new Promise(resolve => proc.once('exit', code => resolve(code))),
    waitFor: async (pred, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        const m = c.json.find(pred)
        if (m !== undefined) return m
        if (exitDescription(proc) !== undefined) break
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      throw new Error(`container ${opts.id}: no such line (${exitDescription(proc) ?? 'still running'}); output tail: ${c.text.slice(-5).join(' | ')} ${JSON.stringify(c.json.slice(-3))}`)
    },
    stop: async () => {
      if (exitDescription(proc) === undefined) await runTool('runc', ['kill', opts.id, 'TERM'])
      return c.exited
    }
  }
  for (const stream of [proc.stdout, proc.stderr]) {
    createInterface({ input: stream }).on('line', line => {
      try { c.json.push(JSON.parse(line) as Record<string, any>) } catch { c.text.push(line) }
    })
  }
  return c
}

/** Removes every container started here (stopped or not). */
export async function deleteContainers (): Promise<void> {
  for (const id of started) await runTool('runc', ['delete', '--force', id])
  started.clear()
}

/** A network namespace with only loopback up. */
export async function createNetns (name: string): Promise<void> {
  for (const args of [['netns', 'add', name], ['-n', name, 'link', 'set', 'lo', 'up']]) {
    const r = await runTool('ip', args)
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`)
  }
}

export async function deleteNetns (name: string): Promise<void> {
  await runTool('ip', ['netns', 'del', name])
}

/** GET `url` from inside the namespace; status and body. */
export async function getInNetns (netns: string, url: string): Promise<{ status: number, body: string }> {
  const script = 'const r = await fetch(process.argv[1]); console.log(JSON.stringify({ status: r.status, body: await r.text() }))'
  const r = await runTool('ip', ['netns', 'exec', netns, process.execPath, '--input-type=module', '-e', script, url])
  if (r.code !== 0) throw new Error(`GET ${url} in ${netns}: ${r.stderr}`)
  return JSON.parse(r.stdout) as { status: number, body: string }
}
