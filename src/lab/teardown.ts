/**
 * Cleanup that runs however the lab ends: normal exit, a thrown error, SIGINT (Ctrl-C), SIGTERM or SIGHUP.
 * Cleanups are synchronous because Node's 'exit' handlers cannot wait; each runs once, newest first.
 */

type Cleanup = () => void

const cleanups: Cleanup[] = []
let installed = false

function runAll (): void {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!
    try {
      fn()
    } catch (err) {
      process.stderr.write(`lab teardown: ${(err as Error).message}\n`)
    }
  }
}

function install (): void {
  if (installed) return
  installed = true
  process.on('exit', runAll)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (cleanups.length > 0) process.stderr.write(`lab: ${sig}, tearing down\n`)
      runAll()
      // 128 + signal number, as a shell reports a process killed by it.
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1))
    })
  }
}

/** Registers `fn` to run at exit; the returned function runs it now instead (and unregisters it). */
export function onTeardown (fn: Cleanup): () => void {
  install()
  cleanups.push(fn)
  return () => {
    const i = cleanups.indexOf(fn)
    if (i >= 0) {
      cleanups.splice(i, 1)
      fn()
    }
  }
}
