/**
 * Runs `fn` with a `defer` that registers clean-up steps, then runs those steps in reverse order
 * however `fn` ends. A failure while starting (an admin port in use) or stopping (a cache directory
 * gone) must end the process, not leave a libp2p node holding it open. Every step runs even when an
 * earlier one fails; the first error (fn's own first) is thrown.
 */
export async function withCleanup<T> (fn: (defer: (step: () => unknown) => void) => Promise<T>): Promise<T> {
  const steps: Array<() => unknown> = []
  let failed = false
  let error: unknown
  let result: T | undefined
  try {
    result = await fn(step => { steps.push(step) })
  } catch (err) {
    failed = true
    error = err
  }
  for (const step of steps.reverse()) {
    try {
      await step()
    } catch (err) {
      if (!failed) {
        failed = true
        error = err
      }
    }
  }
  if (failed) throw error
  return result as T
}
