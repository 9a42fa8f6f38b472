/** `modelswarm fetch NAME --follow --out ROOT [-- CMD ARGS…]`: follow mode's command-line side (src/peer/follow.ts). */
import type { FetchOptions } from '../peer/fetch.ts'
import { currentLink, follow } from '../peer/follow.ts'
import { LatestResolver } from '../peer/latest-resolver.ts'
import { startPeerHost } from '../peer/peer-host.ts'
import { exitStatusOf, modelEnv, startChild, type ChildExit, type RunningChild } from './child-process.ts'
import { printResult } from './fetch-output.ts'
import { InterruptedError } from './signals.ts'

export interface FollowCommandOptions {
  root: string
  cacheDir?: string
  intervalMs: number
  keep: number
  followSignal: NodeJS.Signals
  json: boolean
}

/**
 * Follows NAME@latest until the child exits (its status becomes ours) or, with no child, until a stop signal
 * (exit 0 once a version is current: stopping is how follow ends). A stop signal before the first version is
 * complete is an interruption, as for fetch. With a child, stop signals go to the child, and follow stops
 * once it has exited.
 * @throws InterruptedError when stopped before the first switch; what the first fetch throws
 */
export async function runFollow (base: FetchOptions, command: string[], opts: FollowCommandOptions, signal: AbortSignal): Promise<void> {
  const stop = new AbortController()
  let child: RunningChild | undefined
  let childExit: ChildExit | undefined
  const onStopSignal = (): void => { if (child === undefined) stop.abort(signal.reason) }
  signal.addEventListener('abort', onStopSignal)
  if (signal.aborted) onStopSignal()
  const { version: _version, out: _out, signal: _signal, ...fetch } = base
  // One node, host and bulk endpoint for the whole follow: every version's swarm and the latest polls use them.
  const peerHost = await startPeerHost(fetch)
  let current: string | undefined
  try {
    const resolver = LatestResolver.start({ name: base.name, bootstrap: base.bootstrap, trust: base.trust, node: peerHost.node, log: base.log })
    current = await follow({
      fetch: { ...fetch, peerHost },
      root: opts.root,
      cacheDir: opts.cacheDir,
      resolver,
      intervalMs: opts.intervalMs,
      keep: opts.keep,
      log: base.log,
      signal: stop.signal,
      onSwitch: async ({ result, dir, first }) => {
        printResult(result, dir, opts.json)
        if (command.length === 0) return
        if (first) {
          const c = await startChild(command, modelEnv({ ...result, dir: currentLink(opts.root) }))
          child = c
          base.log.info({ pid: c.pid, command: command[0], current: currentLink(opts.root) }, 'serving: child started; following and seeding while it runs')
          void c.exited.then(exit => {
            childExit = exit
            base.log.info({ code: exit.code, signal: exit.signal }, 'child exited; stopping follow')
            stop.abort()
          })
        } else {
          base.log.info({ pid: child?.pid, signal: opts.followSignal, version: result.version }, 'signalling the child: new version')
          child?.kill(opts.followSignal)
        }
      }
    })
  } finally {
    signal.removeEventListener('abort', onStopSignal)
    await peerHost.stop()
    // Stopped while the child was being started, or follow failed (a later switch could not be made): the
    // child, started detached in its own process group, must not outlive us.
    if (child !== undefined && childExit === undefined) {
      child.kill('SIGTERM')
      childExit = await child.exited
    }
  }
  if (childExit !== undefined) process.exitCode = exitStatusOf(childExit)
  else if (current === undefined && signal.reason instanceof InterruptedError) throw signal.reason
}
