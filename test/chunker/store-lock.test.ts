// The store lock is released by the kernel when its process dies, even when the next process has the same
// PID (PID 1 in a fresh PID namespace, as after a container restart), and still refuses a live second opener.
import { afterEach, describe, expect, it } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import { decodeManifest, encodeManifest } from '../../src/chunker/manifest.ts'
import { StoreLockedError } from '../../src/errors.ts'
import { errorOf } from '../support/errors.ts'

const HOLDER = join(import.meta.dirname, 'lock-holder.ts')
const isRoot = process.getuid?.() === 0
const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

interface Holder { first: Promise<Record<string, any>>, exited: Promise<number | null>, pid: number }

/** Runs lock-holder.ts, inside a new PID namespace when `pidns`; `first` is its first JSON line. */
function holder (manifestPath: string, out: string, pidns: boolean): Holder {
  const args = [HOLDER, manifestPath, out]
  const proc = pidns
    // unshare's own stderr carries a harmless complaint when its child is killed; the holder reports on stdout.
    ? spawn('unshare', ['--pid', '--fork', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>(resolve => proc.once('exit', code => resolve(code)))
  const first = new Promise<Record<string, any>>((resolve, reject) => {
    createInterface({ input: proc.stdout }).once('line', line => resolve(JSON.parse(line)))
    void exited.then(code => reject(new Error(`holder exited ${code} before reporting`)))
  })
  cleanups.push(async () => { proc.kill('SIGKILL'); await killNamespaced(proc.pid!); await exited })
  return { first, exited, pid: proc.pid! }
}

/** SIGKILL from outside to the PID 1 that `unshare --fork` (host PID `unsharePid`) started: PID 1 ignores its own. */
async function killNamespaced (unsharePid: number): Promise<void> {
  const children = await readFile(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').catch(() => '')
  for (const pid of children.trim().split(/\s+/).filter(Boolean)) process.kill(Number(pid), 'SIGKILL')
}

async function storeFixture (): Promise<{ manifestPath: string, out: string }> {
  const root = await mkdtemp(join(tmpdir(), 'ms-lock-'))
  cleanups.push(() => rm(root, { recursive: true, force: true }))
  await mkdir(join(root, 'src'))
  await writeFile(join(root, 'src', 'w.bin'), randomBytes(10_000))
  const manifest = await manifestFromDirectory(join(root, 'src'), { name: 'm', version: 'v1', chunkSize: 4096 })
  const manifestPath = join(root, 'manifest.json')
  await writeFile(manifestPath, encodeManifest(manifest))
  return { manifestPath, out: join(root, 'out') }
}

describe('store lock', () => {
  it.skipIf(!isRoot || spawnSync('unshare', ['--version']).status !== 0)('a store held by a SIGKILLed PID 1 opens again at once in the next PID 1; a live holder refuses others (exit 7)', async () => {
    const { manifestPath, out } = await storeFixture()
    const header = decodeManifest(await readFile(manifestPath))

    const crashed = holder(manifestPath, out, true)
    expect(await crashed.first).toEqual({ opened: true, pid: 1 })
    await killNamespaced(crashed.pid)
    await crashed.exited

    // The container restarts: same PID, and the lock file's old owner is gone.
    const restarted = holder(manifestPath, out, true)
    expect(await restarted.first).toEqual({ opened: true, pid: 1 })

    // While it lives, another process (other PID namespace) and this one are refused.
    const other = holder(manifestPath, out, false)
    expect(await other.first).toMatchObject({ error: 'StoreLockedError' })
    expect(await other.exited).toBe(7)
    expect(await errorOf(ChunkStore.open({ dir: out, header }))).toBeInstanceOf(StoreLockedError)

    await killNamespaced(restarted.pid)
    await restarted.exited
    const store = await ChunkStore.open({ dir: out, header })
    expect(await errorOf(ChunkStore.open({ dir: out, header }))).toBeInstanceOf(StoreLockedError)
    await store.close()
  })
})
