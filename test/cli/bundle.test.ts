/**
 * The CLI's bundle (scripts/build-bundle.ts, src/cli/bundle.ts): built into a copy of the package, the launcher
 * runs it while every input matches, and src/ as soon as one changes or the bundle is missing. The demo — a
 * seeder and two fetch processes, each started through the copy's launcher — runs on the bundle end to end,
 * its outputs verified.
 */
import { spawnSync } from 'node:child_process'
import { appendFile, cp, readdir, rm, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../support/temp.ts'

const REPO = fileURLToPath(new URL('../..', import.meta.url))

/** Runs the copy's launcher; its stderr says which code ran. */
function launch (root: string, args: string[]): { status: number | null, stdout: string, ran: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin/modelswarm.js'), ...args], {
    env: { ...process.env, MODELSWARM_DEBUG_LAUNCH: '1' }, encoding: 'utf8', timeout: 120_000
  })
  return { status: r.status, stdout: r.stdout, ran: /^modelswarm launch: (.*)$/m.exec(r.stderr)?.[1] ?? r.stderr }
}

describe('CLI bundle', () => {
  let root: string
  beforeAll(async () => {
    root = await tempDir('ms-bundle-')
    for (const p of ['bin', 'src', 'scripts', 'package.json', 'package-lock.json']) await cp(join(REPO, p), join(root, p), { recursive: true })
    await symlink(join(REPO, 'node_modules'), join(root, 'node_modules'))
    const build = spawnSync(process.execPath, [join(REPO, 'scripts/build-bundle.ts'), '--root', root], { encoding: 'utf8', timeout: 120_000 })
    expect(build.status, build.stderr).toBe(0)
    expect(build.stdout).toMatch(/dist\/cli: \d+ chunks from \d+ files of src\//)
  }, 150_000)

  it('runs the bundle while its inputs match, a real swarm included', async () => {
    expect(await readdir(join(root, 'dist/cli'))).toContain('inputs.json')
    const version = launch(root, ['--version'])
    expect(version.ran).toBe(`bundle ${join(root, 'dist/cli/main.js')}`)
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/)

    const demo = launch(root, ['demo', '--hosts', '2', '--size', '8MiB', '--dir', join(root, 'demo')])
    expect(demo.status, demo.stdout).toBe(0)
    expect(demo.ran).toBe(`bundle ${join(root, 'dist/cli/main.js')}`)
    expect(demo.stdout).toContain('all outputs byte-identical to the source')
  }, 150_000)

  it('runs src/ once an input changed, naming it, and when there is no bundle', async () => {
    await appendFile(join(root, 'src/peer/piece-picker.ts'), '\n// edited after the build\n')
    const edited = launch(root, ['--version'])
    expect(edited.status).toBe(0)
    expect(edited.ran).toBe('src/ (src/peer/piece-picker.ts changed since the bundle was built)')

    await rm(join(root, 'dist'), { recursive: true })
    const none = launch(root, ['--version'])
    expect(none.status).toBe(0)
    expect(none.ran).toBe('src/ (no bundle in dist/cli (npm run build makes one))')
  })
})
