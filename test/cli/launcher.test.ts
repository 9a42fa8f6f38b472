/**
 * The launcher (bin/modelswarm.js) bounds V8's young generation where V8 reads it, at process start, and
 * the CLI still runs in the process its caller started (the lab reads VmHWM of that pid; issue #12).
 * A preload module records, in each process image it runs in, the pid and the Node flags.
 */
import { spawnSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BIN } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'

async function launch (nodeOptions: string): Promise<{ pid: number, stdout: string, images: Array<{ pid: number, execArgv: string[] }> }> {
  const dir = await tempDir('ms-launcher-')
  const preload = join(dir, 'record.mjs')
  const out = join(dir, 'images.jsonl')
  await writeFile(preload, `import { appendFileSync } from 'node:fs'\nappendFileSync(${JSON.stringify(out)}, JSON.stringify({ pid: process.pid, execArgv: process.execArgv }) + '\\n')\n`)
  const r = spawnSync(process.execPath, [BIN, '--version'], { env: { ...process.env, NODE_OPTIONS: `${nodeOptions} --import ${preload}`.trim() }, encoding: 'utf8' })
  expect(r.status, r.stderr).toBe(0)
  const images = (await readFile(out, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { pid: number, execArgv: string[] })
  return { pid: r.pid!, stdout: r.stdout, images }
}

describe('launcher', () => {
  it('runs the CLI in the same process, started with a bounded young generation', async () => {
    const { pid, stdout, images } = await launch('')
    expect(stdout).toMatch(/^\d+\.\d+\.\d+\n$/)
    const last = images.at(-1)!
    expect(last.pid).toBe(pid)
    expect(last.execArgv).toContain('--max-semi-space-size=8')
  })

  it('keeps a young-generation size the user chose', async () => {
    const { images } = await launch('--max-semi-space-size=16')
    expect(images).toHaveLength(1)
    expect(images[0]!.execArgv).not.toContain('--max-semi-space-size=8')
  })
})
