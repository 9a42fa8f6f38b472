/**
 * What one run (modelswarm in one scenario, or a baseline) measured, before any ratio is taken.
 * Times are ms since the epoch unless named otherwise.
 */
import type { CounterSample } from './counters.ts'
import type { ProcStats } from './processes.ts'

export type System = 'modelswarm' | 'direct' | 'bittorrent'

export interface HostResult {
  host: string
  /** ms from the run's common start (t0) to this host's completion; undefined if it never completed */
  doneMs?: number
  /** seconds from the host's own start (the process's own clock, after module loading) to completion */
  ownSeconds?: number
  /** CPU time and peak RSS of the process that completed, read while it lingered */
  stats?: ProcStats
  /** every output file has the origin's SHA-256 */
  verified: boolean
  /** when the process that completed (or the last one) started, in ms after t0 */
  startedMs: number
  /** a late joiner: started once the others held half their bytes */
  late?: boolean
  /** churn: SIGKILLed mid-way; `restarted` says whether a new process took over */
  killed?: boolean
  restarted?: boolean
  /** the process exited without completing: its exit status and last words */
  failed?: string
  /** follow: ms after t0 (the publish) when the host's follow learned of the new version */
  noticedMs?: number
  /**
   * shard: ms after t0 when the host's reader held the whole first shard; `startedMs` is when the reader
   * asked by its own clock (its exit less curl's time_total), `spawnedMs` when the lab spawned it
   */
  firstShardMs?: number
  /** shard: ms after t0 when the lab spawned the host's reader (before `startedMs` by the reader's own start-up) */
  spawnedMs?: number
}

/** The follow scenario's times around the publish of the new version (t0), ms after t0 unless named otherwise. */
export interface FollowTimes {
  /** how long the marker write took at the origin (t0 is taken before it) */
  publishCallMs: number
  /** the seeder signed `latest` → the new version (undefined if never seen in its log) */
  seederNoticedMs?: number
  /** the seeder held every byte of the new version */
  seederPulledMs?: number
  /** the seeder's --poll-interval and the hosts' --follow-interval, ms */
  seederPollMs: number
  followIntervalMs: number
  /** the first version: from the hosts' start until every host's `current` named it, ms */
  firstVersionMs: number
}

export interface RunResult {
  system: System
  scenario: string
  t0: number
  /** when the last host completed (or the run gave up) */
  end: number
  hosts: HostResult[]
  /** interface counters from before anything of the run started until its end */
  samples: CounterSample[]
  /** bytes sent by the origin over the line during the whole run (seeder pull or direct reads included) */
  lineBytes: number
  /** bytes the seeder's NIC sent from t0 to the end */
  seederEgress: number
  seederStats?: ProcStats
  follow?: FollowTimes
  /** shard: files the model is split into (each host's reader asks for the first) */
  shards?: number
  /** anything the reader must know: how a figure was measured, what went wrong */
  notes: string[]
}
