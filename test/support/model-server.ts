/** The stand-in inference server of the entrypoint tests (model-server.mjs) and the report it writes. */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { sleep } from '../../src/util/sleep.ts'

export const MODEL_SERVER = fileURLToPath(new URL('./model-server.mjs', import.meta.url))

export interface ServerReport {
  env: Record<string, string>
  /** SHA-256 of every file in MODELSWARM_MODEL_DIR when the server started. */
  files: Record<string, string>
  /** Where MODELSWARM_MODEL_DIR pointed when it started, if it is a link. */
  target?: string
  at: number
}

export interface ServerSignal { signal: string, at: number, target?: string }

/** The server's start report, once written; rejects when `alive()` turns false first. */
export async function serverReport (path: string, alive: () => boolean): Promise<ServerReport> {
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => undefined)
    if (text !== undefined) return JSON.parse(text) as ServerReport
    if (!alive()) throw new Error('fetch exited before the server reported')
    await sleep(50)
  }
}

/** The signals the server recorded so far. */
export async function serverSignals (report: string): Promise<ServerSignal[]> {
  const text = await readFile(`${report}.signals`, 'utf8').catch(() => '')
  return text.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as ServerSignal)
}
