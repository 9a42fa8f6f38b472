/**
 * Exponential backoff with jitter, the one delay rule for every retry loop (origin reads, NameNode
 * rounds, resolving a version): base·2^(attempt−1), capped, times a factor drawn from [0.5, 1.5) so
 * hosts retrying together spread out ("equal jitter", AWS Architecture Blog, "Exponential Backoff And
 * Jitter", 2015). The loops themselves differ (resume at a chunk, fail over across NameNodes, ask every
 * seeder per round), so each keeps its own; only the delay is shared.
 */
import type { Rng } from './random.ts'

export interface BackoffPolicy {
  /** Delay before the first retry, in ms. */
  baseMs: number
  /** Largest delay, in ms. @default Infinity */
  maxMs?: number
  /** Whether to apply jitter. @default true */
  jitter?: boolean
}

/** Milliseconds to wait before retry number `attempt` (1 for the first retry). */
export function backoffDelay (attempt: number, policy: BackoffPolicy, rng: Rng = Math.random): number {
  const delay = Math.min(policy.maxMs ?? Infinity, policy.baseMs * 2 ** Math.max(0, attempt - 1))
  return policy.jitter === false ? delay : delay * (0.5 + rng())
}
