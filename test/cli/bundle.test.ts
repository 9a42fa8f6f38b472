/**
 * The CLI's bundle (scripts/build-bundle.ts, src/cli/bundle.ts): built into a copy of the package reached
 * through a symlink (rolldown names modules by real path), the launcher runs it while every input matches,
 * and src/ as soon as a file of src/, the lockfile or a dependency patch changes (or a patch is added), or
 * the bundle is missing. The demo — a seeder and two fetch processes, each started through the copy's
 * launcher — runs on the bundle end to end, its outputs verified. A rebuild leaves the previous build's
 * folder for processes started from it.
 */
import { spawnSync } from 'node:child_process'
import { access, appendFile, cp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../support/temp.ts'

const REPO = fileURLToPath(new URL('../..', import.meta.url))

function build (root: string): string {
  const r = spawnSync(process.execPath, [join(REPO, 'scripts/build-bundle.ts'), '--root', root], { encoding: 'utf8', timeout: 180_000 })
  expect(r.status, r.stderr).toBe(0)
  const m = /^modelswarm build: (dist\/cli-\S+): \d+ chunks from (\d+) files of src\//.exec(r.stdout)
  expect(m, r.stdout).not.toBeNull()
  expect(Number(m![2])).toBeGreaterThan(50)
  return m![1]!
}

/** Runs the copy's launcher; its stderr says which code ran. */
function launch (root: string, args: string[]): { status: number | null, stdout: string, ran: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin/modelswarm.js'), ...args], {
    env: { ...process.env, MODELSWARM_DEBUG_LAUNCH: '1' }, encoding: 'utf8', timeout: 180_000, killSignal: 'SIGKILL'
  })
  return { status: r.status, stdout: r.stdout, ran: /^modelswarm launch: (.*)$/m.exec(r.stderr)?.[1] ?? r.stderr }
}

describe('CLI bundle', () => {
  let copy: string
  let root: string
  let firstBuild: string
  beforeAll(async () => {
    copy = join(await tempDir('ms-bundle-'), 'copy')
    for (const p of ['bin', 'src', 'patches', 'package.json', 'package-lock.json']) await cp(join(REPO, p), join(copy, p), { recursive: true })
    await symlink(join(REPO, 'node_modules'), join(copy, 'node_modules'))
    root = `${copy}-link`
    await symlink(copy, root)
    firstBuild = build(root)
  }, 240_000)

  it('runs the bundle while its inputs match, a real swarm included', async () => {
    const version = launch(root, ['--version'])
    expect(version.ran).toBe(`bundle ${join(copy, firstBuild, 'main.js')}`)
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/)

    const demo = launch(root, ['demo', '--hosts', '2', '--size', '8MiB', '--dir', join(copy, 'demo')])
    expect(demo.status, demo.stdout).toBe(0)
    expect(demo.ran).toBe(`bundle ${join(copy, firstBuild, 'main.js')}`)
    expect(demo.stdout).toContain('all outputs byte-identical to the source')
  }, 240_000)

  it('keeps the previous build for processes started from it', async () => {
    const second = build(root)
    expect(second).not.toBe(firstBuild)
    expect(launch(root, ['--version']).ran).toBe(`bundle ${join(copy, second, 'main.js')}`)
    await access(join(copy, firstBuild, 'main.js'))
    const third = build(root)
    expect((await readdir(join(copy, 'dist'))).sort()).toEqual([second.slice(5), third.slice(5), 'cli.json'].sort())
  }, 240_000)

  it('runs src/ once a file of src/, the lockfile or a patch changed, naming it, and when there is no bundle', async () => {
    const picker = join(copy, 'src/peer/piece-picker.ts')
    await access(picker)
    await appendFile(picker, '\n// edited after the build\n')
    const edited = launch(root, ['--version'])
    expect(edited.status).toBe(0)
    expect(edited.ran).toBe('src/ (src/peer/piece-picker.ts changed since the bundle was built)')

    build(root)
    expect(launch(root, ['--version']).ran).toMatch(/^bundle /)
    await appendFile(join(copy, 'package-lock.json'), '\n')
    expect(launch(root, ['--version']).ran).toBe('src/ (package-lock.json changed since the bundle was built)')
    // The dependency patches pin node_modules too: an edited one, or one added since the build.
    build(root)
    const [patch] = (await readdir(join(copy, 'patches'))).filter(f => f.endsWith('.patch'))
    await appendFile(join(copy, 'patches', patch!), '\n')
    expect(launch(root, ['--version']).ran).toBe(`src/ (patches/${patch!} changed since the bundle was built)`)
    build(root)
    await writeFile(join(copy, 'patches', 'zz-new+1.0.0.patch'), '')
    expect(launch(root, ['--version']).ran).toBe('src/ (patches/zz-new+1.0.0.patch is new since the bundle was built)')

    await rm(join(copy, 'dist'), { recursive: true })
    const none = launch(root, ['--version'])
    expect(none.status).toBe(0)
    expect(none.ran).toBe('src/ (no dist/cli.json (npm run build makes one))')
  }, 240_000)
})
