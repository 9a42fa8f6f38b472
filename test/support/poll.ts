/** Polling for integration tests that watch real processes and files. */

/** Polls until `pred` holds (every 50 ms, at most `ms`); false when it never did. */
export async function until (pred: () => Promise<boolean>, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise(resolve => setTimeout(resolve, 50))) {
    if (await pred()) return true
  }
  return false
}
