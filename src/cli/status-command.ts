/** `modelswarm status [NAME@VERSION]`: what the seeders see of the swarm, once, as JSON, or redrawn. */
import { ModelswarmError, NotFoundError } from '../errors.ts'
import { parseModelVersion } from '../model-version.ts'
import type { SeederSnapshot } from '../seeder/snapshot.ts'
import { sleep } from '../util/sleep.ts'
import { AdminUnavailableError } from './preheat-command.ts'
import { abortOnSignal } from './signals.ts'
import { findVersion, renderHosts, renderVersions, versionStatuses } from './status-view.ts'

export interface StatusCommandOptions {
  /** Admin addresses of the seeders to ask, host:port. */
  seeders: string[]
  json: boolean
  /** Redraw every this many ms until interrupted. */
  watch?: number
}

export async function runStatus (model: string | undefined, opts: StatusCommandOptions): Promise<void> {
  const want = model === undefined ? undefined : parseModelVersion(model)
  const signal = abortOnSignal()
  for (;;) {
    const rows = versionStatuses(await Promise.all(opts.seeders.map(snapshotFrom)))
    const row = want === undefined ? undefined : findVersion(rows, want)
    if (want !== undefined && row === undefined) throw new NotFoundError(`${model} is not held by ${opts.seeders.join(', ')}`)
    const text = opts.json ? JSON.stringify(row ?? rows) : row !== undefined ? renderHosts(row) : renderVersions(rows)
    if (opts.watch !== undefined && !opts.json) process.stdout.write('\x1b[H\x1b[2J')
    process.stdout.write(text + '\n')
    if (opts.watch === undefined) return
    try {
      await sleep(opts.watch, signal)
    } catch {
      return
    }
  }
}

async function snapshotFrom (admin: string): Promise<SeederSnapshot> {
  const url = `http://${admin}/v1/models`
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    if (!res.ok) throw new ModelswarmError('MS_ADMIN_UNAVAILABLE', `${url}: HTTP ${res.status}`)
    return await res.json() as SeederSnapshot
  } catch (err) {
    if (err instanceof ModelswarmError) throw err
    const cause = (err as { cause?: { code?: string } }).cause
    throw new AdminUnavailableError(`cannot reach the seeder's admin endpoint at ${url}: ${cause?.code ?? (err as Error).message}`, { cause: err })
  }
}
