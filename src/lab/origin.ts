/**
 * The origin: a real MiniDFSCluster (test/hdfs) running inside the offline namespace, so every byte the
 * seeder pulls — and every byte a host reads straight from the origin in the direct baseline — crosses the
 * shaped line. The model is `files` files of deterministic content (mini-hdfs-content.ts), so the expected
 * SHA-256 of each file is computed here without a second copy. Besides the lab's model (LAB_MODEL, `files`
 * files), a run may write another layout (`layout`): another version (its every byte differs) or another
 * number of files.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { startMiniHdfs, type MiniHdfs } from '../../test/hdfs/mini-hdfs.ts'
import { contentBytes } from '../../test/hdfs/mini-hdfs-content.ts'

export const LAB_MODEL = { name: 'lab-llm', version: 'v1' } as const
/** The version the follow scenario publishes after LAB_MODEL's. */
export const LAB_NEXT_VERSION = 'v2'
/** Content seeds of a version's files start at (its number − 1) × this, so no two versions share a file's bytes. */
const SEEDS_PER_VERSION = 1000
/** HDFS user for simple authentication (the JVM runs as root in the lab). */
export const HDFS_USER = 'root'
const HASH_PIECE = 8 << 20
const execFileAsync = promisify(execFile)

export interface ModelFile { path: string, size: number, seed: number, sha256: string }

export interface LabOrigin {
  /** WebHDFS NameNode URL at the offline namespace's address */
  namenode: string
  /** the lab's model: LAB_MODEL.version in `files` files */
  files: ModelFile[]
  /** total bytes F */
  size: number
  /** F bytes of `version` in `files` files, with their digests (computed once per layout). */
  layout: (version: string, files: number) => ModelFile[]
  /**
   * Writes a version's files (by default the lab's model: LAB_MODEL.version, `files`) under
   * `<root>/lab-llm/<version>/`, inside the offline namespace: no line traffic. Each run gets its own
   * root, so a fresh seeder watching it pulls only that run's copy.
   */
  writeVersion: (root: string, version?: string, files?: ModelFile[]) => Promise<void>
  /** Writes a version's completion marker under `root`: it becomes ready for a seeder watching it. */
  publish: (root: string, version?: string) => Promise<void>
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

/**
 * Names, sizes and content seeds of `version` (`v<k>`) split into `files` files: the same paths and sizes
 * for every version, seeds (and so bytes) different for each.
 * @throws RangeError for a version not of the form v<k>
 */
export function fileLayout (size: number, files: number, version: string): Array<Omit<ModelFile, 'sha256'>> {
  const k = /^v([1-9]\d*)$/.exec(version)
  if (k === null) throw new RangeError(`lab versions are v1, v2, …, got "${version}"`)
  const base = (Number(k[1]) - 1) * SEEDS_PER_VERSION
  return splitSizes(size, files).map((s, i) => ({ path: `part-${String(i).padStart(3, '0')}.bin`, size: s, seed: base + i + 1 }))
}

function sha256Of (seed: number, size: number): string {
  const h = createHash('sha256')
  for (let off = 0; off < size; off += HASH_PIECE) h.update(contentBytes(seed, off, Math.min(HASH_PIECE, size - off)))
  return h.digest('hex')
}

export async function startOrigin (opts: { netns: string, addr: string, size: number, files: number }): Promise<LabOrigin> {
  // mini-hdfs.ts kills the JVM on exit; teardown.ts turns Ctrl-C into an exit.
  const hdfs: MiniHdfs = await startMiniHdfs({ netns: opts.netns, host: opts.addr })
  const layouts = new Map<string, ModelFile[]>()
  const layout = (version: string, files: number): ModelFile[] => {
    const key = `${version}/${files}`
    let l = layouts.get(key)
    if (l === undefined) layouts.set(key, l = fileLayout(opts.size, files, version).map(f => ({ ...f, sha256: sha256Of(f.seed, f.size) })))
    return l
  }
  const files = layout(LAB_MODEL.version, opts.files)
  const namenode = hdfs.namenodes[0]!
  const dir = (root: string, version: string = LAB_MODEL.version): string => `${root}/${LAB_MODEL.name}/${version}`
  const origin: LabOrigin = {
    namenode,
    files,
    size: opts.size,
    layout,
    writeVersion: async (root, version = LAB_MODEL.version, fs = files) => {
      for (const f of fs) await hdfs.writeFile(`${dir(root, version)}/${f.path}`, f.size, f.seed)
    },
    publish: async (root, version) => { await hdfs.command(`touch ${dir(root, version)}/_SUCCESS`) },
    openUrl: (root, f) => `${namenode}/webhdfs/v1${dir(root)}/${f.path}?op=OPEN&user.name=${HDFS_USER}`,
    warmUp: async () => {
      await origin.writeVersion('/lab/warmup')
      for (const f of files) await execFileAsync('ip', ['netns', 'exec', opts.netns, 'curl', '-sS', '--fail', '-L', '-o', '/dev/null', origin.openUrl('/lab/warmup', f)])
    },
    stop: () => hdfs.stop()
  }
  return origin
}
