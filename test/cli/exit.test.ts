/**
 * A command ends when its work is done: a timer some library left behind (libp2p's address manager leaves
 * a 1 s one on stop) must not hold the process. A preload module stands in for such a straggler with a
 * 10-minute timer; the test waits far less than that.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { BIN, run, track, type Proc } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'

/**
 * `keygen --json` writing `keyFile`, in a process a preloaded 10-minute timer would hold: its exit code, or
 * a note that it was still running after 30 s.
 */
async function keygenWithStraggler (dir: string, keyFile: string): Promise<{ keygen: Proc, code: unknown }> {
  const straggler = join(dir, 'straggler.mjs')
  await writeFile(straggler, 'setTimeout(() => {}, 600_000)\n')
  const keygen = track(run(['keygen', '--swarm-key-file', keyFile, '--json'], { env: { NODE_OPTIONS: `--import ${straggler}` } }))
  const code = await Promise.race([keygen.exited, new Promise(resolve => setTimeout(() => resolve('still running after 30 s'), 30_000))])
  return { keygen, code }
}

describe('process exit', () => {
  it('a command that succeeded exits at once, whatever timers are left, with its output whole', async () => {
    const dir = await tempDir('ms-exit-')
    const { keygen, code } = await keygenWithStraggler(dir, join(dir, 'swarm.key'))
    expect(code).toBe(0)
    expect(keygen.stdout.some(m => typeof m.swarmKey?.fingerprint === 'string')).toBe(true)
  }, 60_000)

  it('a command that failed exits at once too, with its error and exit status', async () => {
    const dir = await tempDir('ms-exit-')
    await writeFile(join(dir, 'a-file'), '')
    // The key file's directory is a file: keygen cannot write it.
    const { keygen, code } = await keygenWithStraggler(dir, join(dir, 'a-file', 'swarm.key'))
    expect(code).not.toBe(0)
    expect(typeof code).toBe('number')
    expect(keygen.stdout.some(m => m.ok === false && typeof m.message === 'string')).toBe(true)
  }, 60_000)

  it('what a command wrote to a pipe its reader has not taken yet still arrives whole', async () => {
    const dir = await tempDir('ms-exit-')
    // 256 KiB of lines written at start, more than a pipe holds (64 KiB): the rest waits in the process. Only
    // in the image the CLI runs in: the launcher replaces the first one at once (bin/modelswarm.js).
    const filler = join(dir, 'filler.mjs')
    await writeFile(filler, `if (process.execArgv.includes('--max-semi-space-size=8')) for (let i = 0; i < 2048; i++) process.stdout.write(JSON.stringify({ filler: i, pad: 'x'.repeat(100) }) + '\\n')\n`)
    const child = spawn(process.execPath, [BIN, 'keygen', '--swarm-key-file', join(dir, 'swarm.key'), '--json'], { env: { ...process.env, NODE_OPTIONS: `--import ${filler}` }, stdio: ['ignore', 'pipe', 'inherit'] })
    // The reader is slow: it starts reading a second after the start, when keygen is long done.
    child.stdout.pause()
    const chunks: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => chunks.push(b))
    setTimeout(() => child.stdout.resume(), 1000)
    const [code] = await once(child, 'close') as [number]
    expect(code).toBe(0)
    const lines = Buffer.concat(chunks).toString().trim().split('\n').map(l => JSON.parse(l) as Record<string, any>)
    expect(lines.filter(l => typeof l.filler === 'number')).toHaveLength(2048)
    expect(lines.at(-1)?.swarmKey?.fingerprint).toBeTypeOf('string')
  }, 60_000)
})
