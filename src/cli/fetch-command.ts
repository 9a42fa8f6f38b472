/** `modelswarm fetch NAME[@VERSION] [-- CMD ARGS…]`. */
import { EXIT, InvalidInputError } from '../errors.ts'
import { parseModelRef } from '../model-version.ts'
import { createLogger, type Logger } from '../log.ts'
import { fetchViaHostCache } from '../peer/cached-fetch.ts'
import { FETCH_DEFAULTS, fetchModel, type FetchOptions } from '../peer/fetch.ts'
import { LatestResolver } from '../peer/latest-resolver.ts'
import { startPeerHost } from '../peer/peer-host.ts'
import { exitStatusOf, modelEnv, startChild, type ChildExit, type ModelEnv } from './child-process.ts'
import { printResult, uploadBudget } from './fetch-output.ts'
import { runFollow } from './follow-command.ts'
import { showProgress } from './progress.ts'
import { TtyLog, wantsTtyLog } from './tty-log.ts'
import { abortOnSignal, InterruptedError } from './signals.ts'
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
  uploadRate?: number
  cacheDir?: string
  follow: boolean
  followInterval: number
  followSignal: NodeJS.Signals
  keep: number
}

export async function runFetch (model: string, command: string[], opts: FetchCommandOptions): Promise<void> {
  const { name, version } = parseModelRef(model)
  const tty = wantsTtyLog(process.stderr, opts.json) ? new TtyLog(process.stderr) : undefined
  const log = createLogger({ level: opts.logLevel, destination: tty })
  const membership = await loadMembership(opts)
  const privateKey = opts.identityFile === undefined ? undefined : await loadKey(opts.identityFile)
  const signal = abortOnSignal()
  let stopProgress: (() => void) | undefined
  const base: FetchOptions = {
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
    swarm: { uploadBudget: uploadBudget(opts.uploadRate) },
    log,
    signal,
    onSwarm: swarm => {
      stopProgress?.()
      stopProgress = showProgress(swarm, { tty, log })
    },
    onComplete: () => {
      stopProgress?.()
      stopProgress = undefined
    }
  }
  try {
    if (opts.follow) {
      if (version !== undefined) throw new InvalidInputError(`--follow tracks ${name}@latest: drop @${version}`)
      const { out: root, cacheDir, followInterval: intervalMs, keep, followSignal, json } = opts
      await runFollow(base, command, { root, cacheDir, intervalMs, keep, followSignal, json }, signal)
      return
    }
    let child: ChildExit | undefined
    const fetchOpts: FetchOptions = {
      ...base,
      onComplete: result => {
        base.onComplete?.(result)
        printResult(result, opts.out, opts.json)
      },
      seedWhile: command.length === 0 ? undefined : async result => { child = await serve(command, { dir: opts.out, ...result }, log) }
    }
    const result = opts.cacheDir === undefined
      ? await fetchModel(fetchOpts)
      : await fetchViaHostCache({ ...fetchOpts, cacheDir: opts.cacheDir, version: version ?? await resolveLatest(base) })
    log.info({ bytesUp: result.stats.bytesUp, chunksUp: result.stats.chunksUp }, SWARM_MSG.stoppedSeeding)
    if (child !== undefined) process.exitCode = exitStatusOf(child)
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

/** Runs `command` with the model in its environment until it exits; this process's stop signals reach it. */
async function serve (command: string[], model: ModelEnv, log: Logger): Promise<ChildExit> {
  const child = await startChild(command, modelEnv(model))
  log.info({ pid: child.pid, command: command[0], version: `${model.name}@${model.version}` }, 'serving: child started; seeding while it runs')
  const exit = await child.exited
  log.info({ code: exit.code, signal: exit.signal }, 'child exited')
  return exit
}

/** NAME@latest as the seeders name it now (the host cache needs the concrete version for its directory). */
async function resolveLatest (opts: FetchOptions): Promise<string> {
  // The fetch's identity and membership (a seeder in a private swarm refuses a bare node), listening nowhere:
  // it is stopped before the fetch's own node takes the listen addresses.
  const peer = await startPeerHost({ ...opts, listen: [], bulk: false })
  try {
    const resolver = LatestResolver.start({ name: opts.name, bootstrap: opts.bootstrap, trust: opts.trust, node: peer.node, log: opts.log })
    return (await resolver.resolve(opts.idleTimeoutMs ?? FETCH_DEFAULTS.idleTimeoutMs, opts.signal)).header.version
  } finally {
    await peer.stop()
  }
}
