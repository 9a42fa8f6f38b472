/**
 * The origin: a real MiniDFSCluster (test/hdfs) running inside the offline namespace, so every byte the
 * seeder pulls — and every byte a host reads straight from the origin in the direct baseline — crosses the
 * shaped line. The model is `files` files of deterministic content (mini-hdfs-content.ts), so the expected
 * SHA-256 of each file is computed here without a second copy.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { startMiniHdfs, type MiniHdfs } from '../../test/hdfs/mini-hdfs.ts'
import { contentBytes } from '../../test/hdfs/mini-hdfs-content.ts'

export const LAB_MODEL = { name: 'lab-llm', version: 'v1' } as const
/** HDFS user for simple authentication (the JVM runs as root in the lab). */
export const HDFS_USER = 'root'
const HASH_PIECE = 8 << 20
const execFileAsync = promisify(execFile)

export interface ModelFile { path: string, size: number, seed: number, sha256: string }

export interface LabOrigin {
  /** WebHDFS NameNode URL at the offline namespace's address */
  namenode: string
  files: ModelFile[]
  /** total bytes F */
  size: number
  /**
   * Writes the model's files under `<root>/lab-llm/v1/` (inside the offline namespace: no line traffic).
   * Each run gets its own root, so a fresh seeder watching it pulls only that run's copy.
   */
  writeVersion: (root: string) => Promise<void>
  /** Writes the completion marker under `root`: the version becomes ready for a seeder watching it. */
  publish: (root: string) => Promise<void>
  /** WebHDFS OPEN URL of one model file (the NameNode redirects to the DataNode) */
  openUrl: (root: string, file: ModelFile) => string
  /**
   * Writes and reads one copy inside the offline namespace (no line traffic): the DataNode's first read
   * is seconds slower than later ones (JIT, lazy setup), which is no property of any system measured.
   */
  warmUp: () => Promise<void>
  stop: () => Promise<void>
}

/** Splits `size` bytes into `files` parts whose sizes differ by at most one byte. */
export function splitSizes (size: number, files: number): number[] {
  const base = Math.floor(size / files)
  return Array.from({ length: files }, (_, i) => base + (i < size % files ? 1 : 0))
}

function sha256Of (seed: number, size: number): string {
  const h = createHash('sha256')
  for (let off = 0; off < size; off += HASH_PIECE) h.update(contentBytes(seed, off, Math.min(HASH_PIECE, size - off)))
  return h.digest('hex')
}

export async function startOrigin (opts: { netns: string, addr: string, size: number, files: number }): Promise<LabOrigin> {
  // mini-hdfs.ts kills the JVM on exit; teardown.ts turns Ctrl-C into an exit.
  const hdfs: MiniHdfs = await startMiniHdfs({ netns: opts.netns, host: opts.addr })
  const files: ModelFile[] = splitSizes(opts.size, opts.files).map((size, i) => ({ path: `part-${String(i).padStart(3, '0')}.bin`, size, seed: i + 1, sha256: sha256Of(i + 1, size) }))
  const namenode = hdfs.namenodes[0]!
  const dir = (root: string): string => `${root}/${LAB_MODEL.name}/${LAB_MODEL.version}`
  const origin: LabOrigin = {
    namenode,
    files,
    size: opts.size,
    writeVersion: async root => {
      for (const f of files) await hdfs.writeFile(`${dir(root)}/${f.path}`, f.size, f.seed)
    },
    publish: async root => { await hdfs.command(`touch ${dir(root)}/_SUCCESS`) },
    openUrl: (root, f) => `${namenode}/webhdfs/v1${dir(root)}/${f.path}?op=OPEN&user.name=${HDFS_USER}`,
    warmUp: async () => {
      await origin.writeVersion('/lab/warmup')
      for (const f of files) await execFileAsync('ip', ['netns', 'exec', opts.netns, 'curl', '-sS', '--fail', '-L', '-o', '/dev/null', origin.openUrl('/lab/warmup', f)])
    },
    stop: () => hdfs.stop()
  }
  return origin
}
