/** `modelswarm fetch NAME[@VERSION]`. */
import { EXIT } from '../errors.ts'
import { formatModelVersion, parseModelRef } from '../model-version.ts'
import { createLogger } from '../log.ts'
import { fetchModel } from '../peer/fetch.ts'
import { showProgress } from './progress.ts'
import { abortOnSignal, InterruptedError } from './signals.ts'
import { formatBytes, formatRate } from '../util/units.ts'
import { SWARM_MSG } from '../peer/swarm-log.ts'
import { loadKey } from '../seeder/identity.ts'
import { loadMembership, type MembershipCommandOptions } from './membership-options.ts'

export interface FetchCommandOptions extends MembershipCommandOptions {
  identityFile?: string
  out: string
  bootstrap: string[]
  trust: string[]
  listen: string[]
  linger: number
  timeout: number
  json: boolean
  bulk: boolean
  bulkPort: number
  logLevel: string
}

/** CPU time of this process so far: what a download costs the host, beside how long it took. */
function cpuSeconds (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

export async function runFetch (model: string, opts: FetchCommandOptions): Promise<void> {
  const { name, version } = parseModelRef(model)
  const log = createLogger({ level: opts.logLevel })
  const membership = await loadMembership(opts)
  const privateKey = opts.identityFile === undefined ? undefined : await loadKey(opts.identityFile)
  const signal = abortOnSignal()
  let stopProgress: (() => void) | undefined
  try {
    const result = await fetchModel({
      name,
      version,
      out: opts.out,
      bootstrap: opts.bootstrap,
      trust: opts.trust,
      ...membership,
      privateKey,
      listen: opts.listen,
      bulk: opts.bulk,
      bulkPort: opts.bulkPort,
      lingerMs: opts.linger,
      idleTimeoutMs: opts.timeout,
      log,
      signal,
      onSwarm: swarm => {
        stopProgress = showProgress(swarm, { tty: process.stderr.isTTY === true && !opts.json, log })
      },
      onComplete: result => {
        stopProgress?.()
        stopProgress = undefined
        if (opts.json) process.stdout.write(JSON.stringify({ ok: true, out: opts.out, ...result, peakRssBytes: process.resourceUsage().maxRSS * 1024, cpuSeconds: cpuSeconds() }) + '\n')
        else process.stdout.write(`${formatModelVersion(result)} → ${opts.out}: ${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s (${formatRate(result.bytes / result.seconds)}), manifest ${result.manifestId}\n`)
      }
    })
    log.info({ bytesUp: result.stats.bytesUp, chunksUp: result.stats.chunksUp }, SWARM_MSG.stoppedSeeding)
  } catch (err) {
    stopProgress?.()
    // Stopped while lingering after a complete download is a normal end.
    if (err instanceof InterruptedError || signal.reason instanceof InterruptedError) {
      process.stderr.write(`modelswarm: ${(signal.reason as Error).message}; verified chunks are kept, rerun to resume\n`)
      process.exitCode = EXIT.interrupted
      return
    }
    throw err
  }
}
