/** Waits `ms`, or rejects with the signal's reason as soon as it aborts (the listener is removed either way). */
export function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.reject(signal.reason)
  if (ms <= 0) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Waits for `p` (rethrowing its error) or `ms`, whichever is first; the timer goes with it. */
export async function settledWithin (p: Promise<unknown>, ms: number): Promise<void> {
  const timer = new AbortController()
  try {
    await Promise.race([p, sleep(ms, timer.signal)])
  } finally {
    timer.abort()
  }
}
