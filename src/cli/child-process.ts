/**
 * The command after `fetch … --`: run as a child once the model is complete (an inference server in a
 * container entrypoint), with the model's location in its environment, every stop or reload signal this
 * process gets passed on to it, and this process ending as it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { constants } from 'node:os'
import { ModelswarmError } from '../errors.ts'
import { exitDescription } from '../util/process-exit.ts'

/** Signals passed on to the child: the stop signals a runtime or a terminal sends, and SIGHUP for reloads. */
export const FORWARDED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const

/** The command could not be started (not found, not executable). Exit status 127, as a shell's. */
export class ChildStartError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_CHILD_START', message, options) }
}

export interface ChildExit { code: number | null, signal: NodeJS.Signals | null }

export interface RunningChild {
  readonly pid: number
  /** Settles when the child has exited. */
  readonly exited: Promise<ChildExit>
  /** Sends `signal` to the child if it still runs. */
  kill: (signal: NodeJS.Signals) => void
}

/** What the child learns about the model it serves. */
export interface ModelEnv {
  /** Directory holding the model's files (in follow mode the `current` link, which moves on each switch). */
  dir: string
  name: string
  version: string
  manifestId: string
}

/** The child's environment variables for `model`, added to this process's environment. */
export function modelEnv (model: ModelEnv): Record<string, string> {
  return {
    MODELSWARM_MODEL_DIR: model.dir,
    MODELSWARM_MODEL_NAME: model.name,
    MODELSWARM_MODEL_VERSION: model.version,
    MODELSWARM_MANIFEST_ID: model.manifestId
  }
}

/**
 * The exit status a shell reports for `exit`: the child's code, or 128 + the signal's number when a
 * signal ended it (SIGTERM → 143).
 */
export function exitStatusOf (exit: ChildExit): number {
  if (exit.code !== null) return exit.code
  return 128 + (exit.signal === null ? 0 : constants.signals[exit.signal] ?? 0)
}

/**
 * Starts `command` (argv, no shell) with `env` added to this process's environment, stdio shared, and
 * forwards FORWARDED_SIGNALS to it until it exits. The child runs in its own process group so a terminal's
 * Ctrl-C reaches it once, through us, not twice (as the launcher bin/modelswarm.js does).
 * @throws ChildStartError when it cannot be started (the promise rejects before any signal is forwarded)
 */
export async function startChild (command: readonly string[], env: Record<string, string>): Promise<RunningChild> {
  const [file, ...args] = command
  if (file === undefined) throw new ChildStartError('no command after --')
  const child: ChildProcess = spawn(file, args, { stdio: 'inherit', env: { ...process.env, ...env }, detached: true })
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', err => reject(new ChildStartError(`cannot start ${JSON.stringify(file)}: ${err.message}`, { cause: err })))
  })
  const forward = (s: NodeJS.Signals): void => { child.kill(s) }
  for (const s of FORWARDED_SIGNALS) process.on(s, forward)
  const exited = new Promise<ChildExit>(resolve => {
    child.once('exit', (code, signal) => {
      for (const s of FORWARDED_SIGNALS) process.off(s, forward)
      resolve({ code, signal })
    })
  })
  return {
    pid: child.pid!,
    exited,
    kill: s => { if (exitDescription(child) === undefined) child.kill(s) }
  }
}
