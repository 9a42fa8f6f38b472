/** Process signals as values: the CLI stops cleanly on SIGINT/SIGTERM so on-disk state stays consistent. */

/** Resolves with the name of the first SIGINT or SIGTERM. */
export function untilSignal (): Promise<NodeJS.Signals> {
  return new Promise(resolve => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      resolve(s)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
}

/** An AbortSignal that fires on SIGINT or SIGTERM, with the signal name as the reason. */
export function abortOnSignal (): AbortSignal {
  const ctl = new AbortController()
  void untilSignal().then(s => ctl.abort(new InterruptedError(s)))
  return ctl.signal
}

export class InterruptedError extends Error {
  readonly signal: NodeJS.Signals
  constructor (signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`)
    this.name = 'InterruptedError'
    this.signal = signal
  }
}
