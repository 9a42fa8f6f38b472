/**
 * A version re-published under the same NAME@VERSION is never served as a mix of its old and new bytes,
 * with real processes: the seeder pins each version's origin identity (its revision) when the pull
 * starts, detects a change made while it was down and one made in place during a pull, withdraws what
 * it pulled of the old content and pulls the new one as another revision; hosts get the new bytes whole.
 */
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, open, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fetchUntilNew, seederVersions, startSeeder, type TestModel, track } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'

const MiB = 1024 * 1024
const SIZE = 16 * MiB

/** Deterministic, incompressible content; `tag` makes A and B differ in every chunk. */
function content (tag: string): Buffer {
  const out = Buffer.alloc(SIZE)
  for (let o = 0; o < SIZE; o += 32) createHash('sha256').update(`${tag}:${o}`).digest().copy(out, o)
  return out
}

async function origin (): Promise<TestModel> {
  const root = await tempDir('ms-republish-')
  const source = join(root, 'origin', 'it-llm', 'v1')
  await mkdir(join(source, 'cfg'), { recursive: true, mode: 0o750 })
  await writeFile(join(source, 'cfg', 'config.json'), '{}')
  await writeFile(join(source, 'a.bin'), content('A'))
  await writeFile(join(source, '_SUCCESS'), '')
  return { root, origin: join(root, 'origin'), source, name: 'it-llm', version: 'v1', size: SIZE }
}

async function chunksHeld (admin: string, atLeast: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const [v] = await seederVersions(admin).catch(() => [])
    if ((v?.chunksHeld ?? 0) >= atLeast) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`the seeder never held ${atLeast} chunks`)
}

/** Waits for the seeder's version to be ready: pulled whole and renamed into place. */
async function ready (admin: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const [v] = await seederVersions(admin).catch(() => [])
    if (v?.state === 'ready') return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error('the seeder never finished its pull')
}

/** The first file named `name` under `dir`, depth first. */
async function firstFile (dir: string, name: string): Promise<string> {
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === name) return join(e.parentPath, e.name)
  }
  throw new Error(`no ${name} under ${dir}`)
}

describe('a version re-published at the origin', () => {
  it('changed while the seeder was down: the restarted seeder pulls the new content as a new revision; no host gets a mix', async () => {
    const model = await origin()
    const first = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '4MiB/s']))
    await chunksHeld(first.admin, 6)
    const [before] = await seederVersions(first.admin)
    await first.kill('SIGKILL')
    // Replaced the usual way: written beside, renamed over (a new inode), marker touched again.
    await writeFile(join(model.source, 'a.bin.tmp'), content('B'))
    await rename(join(model.source, 'a.bin.tmp'), join(model.source, 'a.bin'))
    await writeFile(join(model.source, '_SUCCESS'), '')
    const second = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    const out = join(model.root, 'host')
    await fetchUntilNew(second, out)
    expect((await readFile(join(out, 'a.bin'))).equals(content('B'))).toBe(true)
    expect(second.stderr.some(m => m.msg?.startsWith('version changed at the origin'))).toBe(true)
    const [after] = await seederVersions(second.admin)
    expect(after!.headerId).not.toBe(before!.headerId)
    // Directory modes travel with the version.
    expect((await stat(join(out, 'cfg'))).mode & 0o777).toBe(0o750)
  })

  it('overwritten in place during a pull: the seeder stops at the next chunk, withdraws the old bytes and pulls the new; hosts get the new content whole', async () => {
    const model = await origin()
    // B is made before the pull starts: on a loaded machine (load 15 on 2 cores) making it took 5 s, and the
    // pull finished first — a version complete before it changes is served as pulled.
    const b = content('B')
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '2MiB/s']))
    await chunksHeld(seeder.admin, 6)
    const fh = await open(join(model.source, 'a.bin'), 'r+')
    await fh.write(b, 0, SIZE, 0)
    await fh.close()
    const out = join(model.root, 'host')
    const reruns = await fetchUntilNew(seeder, out)
    expect((await readFile(join(out, 'a.bin'))).equals(b)).toBe(true)
    expect(seeder.stderr.some(m => m.msg?.startsWith('version changed at the origin'))).toBe(true)
    console.log(`in-place overwrite: host reran ${reruns} time(s), output = new content`)
  })
  it('overwritten in place during a pull when the old bytes cannot be removed: the seeder says so and stays up, and pulls the new content once they can', async () => {
    const model = await origin()
    const b = content('B')
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '2MiB/s']))
    await chunksHeld(seeder.admin, 6)
    const [before] = await seederVersions(seeder.admin)
    // A file of the old content that even root cannot remove (EPERM), as a read-only or failing disk would.
    const stuck = await firstFile(join(model.root, 'seeder', 'versions'), 'a.bin')
    execFileSync('chattr', ['+i', stuck])
    try {
      const fh = await open(join(model.source, 'a.bin'), 'r+')
      await fh.write(b, 0, SIZE, 0)
      await fh.close()
      const failed = await seeder.waitFor(m => m.msg === 'pull failed; held chunks are still served' && String(m.err).startsWith('could not remove the old content'), 60_000)
      // Node's recursive rm reports an unlink's EPERM as the ENOTDIR of its retry as a directory; the path is named.
      expect(failed.err).toContain(stuck)
      // Before, the failed removal was an unhandled rejection: the seeder exited here.
      await new Promise(resolve => setTimeout(resolve, 1500))
      expect(await seederVersions(seeder.admin)).toBeDefined()
    } finally {
      execFileSync('chattr', ['-i', stuck])
    }
    // Removable again (the operator's fix): a later poll pulls the new content as a new revision.
    for (let i = 0; ; i++) {
      const [v] = await seederVersions(seeder.admin)
      if (v !== undefined && v.headerId !== before!.headerId && v.chunksHeld === SIZE / MiB) break
      if (i === 600) throw new Error(`the new content was never pulled: ${JSON.stringify(v)}`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const out = join(model.root, 'host')
    await fetchUntilNew(seeder, out)
    expect((await readFile(join(out, 'a.bin'))).equals(b)).toBe(true)
  })

  it('changed while the seeder was down, and the finished old files cannot be removed: the seeder says so, and pulls the new content once they can', async () => {
    const model = await origin()
    const first = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    await ready(first.admin)
    const [before] = await seederVersions(first.admin)
    await first.kill('SIGKILL')
    const stuck = join(model.root, 'seeder', 'versions', 'it-llm', 'v1', 'a.bin')
    execFileSync('chattr', ['+i', stuck])
    let second: Awaited<ReturnType<typeof startSeeder>>
    try {
      await writeFile(join(model.source, 'a.bin.tmp'), content('B'))
      await rename(join(model.source, 'a.bin.tmp'), join(model.source, 'a.bin'))
      await writeFile(join(model.source, '_SUCCESS'), '')
      second = track(await startSeeder(model, ['--chunk-size', '1MiB']))
      await second.waitFor(m => m.msg === 'pull failed; held chunks are still served' && String(m.err).startsWith('could not remove the old content'), 60_000)
      // The next admission names the old revision it cannot remove. Before, it took the finished directory for
      // one modelswarm did not write, at every poll, even once it could be removed.
      const refused = await second.waitFor(m => m.msg === 'cannot publish version', 60_000)
      expect(refused.err).toMatch(/cannot remove the old revision of it-llm@v1/)
    } finally {
      execFileSync('chattr', ['-i', stuck])
    }
    const out = join(model.root, 'host')
    await fetchUntilNew(second, out)
    expect((await readFile(join(out, 'a.bin'))).equals(content('B'))).toBe(true)
    const [after] = await seederVersions(second.admin)
    expect(after!.headerId).not.toBe(before!.headerId)
  })

  it('a cached version whose header the seeder cannot read (an older manifest format) is removed and pulled again, not left blocking its pull', async () => {
    const model = await origin()
    const first = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    await chunksHeld(first.admin, 16)
    await first.kill('SIGKILL')
    const headerFile = join(model.root, 'seeder', 'versions', 'it-llm', 'v1.modelswarm', 'header.json')
    await writeFile(headerFile, (await readFile(headerFile, 'utf8')).replace('"modelswarm-manifest/3"', '"modelswarm-manifest/2"'))
    const second = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    const out = join(model.root, 'host')
    expect(await fetchUntilNew(second, out)).toBe(0)
    expect((await readFile(join(out, 'a.bin'))).equals(content('A'))).toBe(true)
    expect(second.stderr.some(m => m.msg?.startsWith('cannot recover cached version: removed'))).toBe(true)
  })

  it('a cached version whose header the seeder cannot read and whose files cannot be removed: the seeder starts and says so, and pulls the version once they can be removed', async () => {
    const model = await origin()
    const first = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    await ready(first.admin)
    await first.kill('SIGKILL')
    const headerFile = join(model.root, 'seeder', 'versions', 'it-llm', 'v1.modelswarm', 'header.json')
    await writeFile(headerFile, (await readFile(headerFile, 'utf8')).replace('"modelswarm-manifest/3"', '"modelswarm-manifest/2"'))
    const stuck = join(model.root, 'seeder', 'versions', 'it-llm', 'v1', 'a.bin')
    execFileSync('chattr', ['+i', stuck])
    let second: Awaited<ReturnType<typeof startSeeder>>
    try {
      // Before, the failed removal escaped recovery and the seeder exited at start.
      second = track(await startSeeder(model, ['--chunk-size', '1MiB']))
      const failed = await second.waitFor(m => m.msg?.startsWith('cannot recover cached version: could not remove it either') === true, 30_000)
      expect(failed.msg).toContain(stuck.replace(/\/a\.bin$/, ''))
      expect(await seederVersions(second.admin)).toBeDefined()
    } finally {
      execFileSync('chattr', ['-i', stuck])
    }
    const out = join(model.root, 'host')
    await fetchUntilNew(second, out)
    expect((await readFile(join(out, 'a.bin'))).equals(content('A'))).toBe(true)
  })
})
