/**
 * A `modelswarm seed --hdfs …` process against a MiniHdfs, and what tests need around it: the admin
 * API's view, waiting for a version's state, and the digests HDFS files must have (from the generator).
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { run, type SeederProc } from '../support/cli.ts'
import type { MiniHdfs } from './mini-hdfs.ts'
import { contentBytes } from './mini-hdfs-content.ts'

export interface HdfsSeederOptions {
  root: string
  cacheDir: string
  user?: string
  extra?: string[]
  /** Added to the seeder's environment (credentials go there, not into argv). */
  env?: Record<string, string>
}

export async function startHdfsSeeder (hdfs: Pick<MiniHdfs, 'namenodes'>, opts: HdfsSeederOptions): Promise<SeederProc> {
  const p = run(['--log-level', 'info', 'seed', '--hdfs', hdfs.namenodes.join(','), '--hdfs-root', opts.root, '--hdfs-user', opts.user ?? 'alice',
    '--cache-dir', opts.cacheDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--admin', '127.0.0.1:0', '--poll-interval', '500ms', '--json', ...opts.extra ?? []],
  { env: opts.env })
  const info = await p.waitFor(m => typeof m.peerId === 'string', 60_000)
  return Object.assign(p, { peerId: info.peerId as string, addr: info.addrs[0] as string, admin: info.admin as string })
}

export interface ModelsView { versions: Array<Record<string, any>>, line: Record<string, any> }

export async function models (admin: string): Promise<ModelsView> {
  return await (await fetch(`${admin}/v1/models`)).json() as ModelsView
}

/** Polls the admin API until NAME@VERSION satisfies `pred`; returns that view of it. */
export async function waitForVersion (admin: string, id: string, pred: (v: Record<string, any>) => boolean, timeoutMs = 120_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs
  let last: Record<string, any> | undefined
  while (Date.now() < deadline) {
    last = (await models(admin)).versions.find(v => `${v.name}@${v.version}` === id)
    if (last !== undefined && pred(last)) return last
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`${id} did not reach the expected state within ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`)
}

export interface HdfsFile { path: string, size: number, seed: number, blockSize?: number }

export async function writeFiles (hdfs: MiniHdfs, dir: string, files: readonly HdfsFile[]): Promise<void> {
  for (const f of files) await hdfs.writeFile(`${dir}/${f.path}`, f.size, f.seed, f.blockSize)
}

/** sha256 of each file's generated content, keyed like treeDigests. */
export function expectedDigests (files: readonly HdfsFile[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of files) {
    const h = createHash('sha256')
    for (let off = 0; off < f.size; off += 16 << 20) h.update(contentBytes(f.seed, off, Math.min(16 << 20, f.size - off)))
    out[f.path] = h.digest('hex')
  }
  return out
}

export const totalSize = (files: readonly HdfsFile[]): number => files.reduce((s, f) => s + f.size, 0)

export const cachePath = (cacheDir: string, name: string, version: string): string => join(cacheDir, 'versions', name, version)
