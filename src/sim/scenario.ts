/**
 * What a simulated run is: the swarm's size, rates and model, the node options under test, arrivals and
 * failures. Rates are bytes per second, times milliseconds, sizes bytes.
 */
import type { UploadPolicyInit } from '../seeder/upload-policy.ts'
import { DRIVER_DEFAULTS, type DriverOptions } from './host-model.ts'

const MiB = 1024 * 1024
const Mbit = 1e6 / 8

export interface Scenario {
  /** Downloading hosts (the seeder not included). */
  hosts: number
  /** Model size F in bytes. */
  modelBytes: number
  /** Files the model is split into (equal sizes); pull ranges never cross a file. @default 1 */
  files: number
  chunkSize: number
  /** Each host's upload u and download d, bytes/s. */
  up: number
  down: number
  /** The seeder's upload u_s, bytes/s. */
  seederUp: number
  /** The line L from the origin into the seeder, bytes/s. */
  line: number
  /** Warm: the seeder holds the model at the start. Cold: it pulls it over the line while serving. */
  warm: boolean
  /** One-way delay of every message and of a transfer's last byte, ms. */
  latencyMs: number
  /** Seed for every random choice in the run. */
  seed: number
  /** Node options for every node (the real defaults, and the simulator's candidate rules). */
  driver: DriverOptions
  /** The seeder's UploadPolicy options. */
  policy: Omit<UploadPolicyInit, 'numChunks' | 'rng'>
  /** The seeder's pull: concurrent reads and longest read (the seeder's --parallel-reads, --read-size). */
  pull: { parallel: number, rangeBytes: number }
  /** This fraction of hosts joins at uniform random times in [0, windowMs]; the rest at 0. */
  arrivals: { lateFraction: number, windowMs: number }
  /**
   * At uniform random times in [fromMs, toMs], this fraction of hosts is killed (processes gone, sockets
   * reset); of those, `restartFraction` start again `restartAfterMs` later with the chunks they held.
   */
  failures: { killFraction: number, fromMs: number, toMs: number, restartFraction: number, restartAfterMs: number }
  /** How many members a DHT lookup returns. @default 20 */
  discoverCount: number
  /** Give up at this simulated time, ms. */
  maxSimMs: number
}

/**
 * The lab's default rates and model (u = 25, d = 100, u_s = 50, L = 100 Mbit/s, F = 64 MiB), warm, in 4 MiB
 * chunks: the unit tests' setting. The lab's seeder cuts 64 MiB into 128 KiB chunks (chunk-size.ts), as
 * `npm run simulate` does unless `--chunk` is given.
 */
export function defaultScenario (over: Partial<Scenario> = {}): Scenario {
  return {
    hosts: 8,
    modelBytes: 64 * MiB,
    files: 1,
    chunkSize: 4 * MiB,
    up: 25 * Mbit,
    down: 100 * Mbit,
    seederUp: 50 * Mbit,
    line: 100 * Mbit,
    warm: true,
    latencyMs: 1,
    seed: 1,
    driver: { ...DRIVER_DEFAULTS },
    policy: {},
    pull: { parallel: 4, rangeBytes: 256 * MiB },
    arrivals: { lateFraction: 0, windowMs: 0 },
    failures: { killFraction: 0, fromMs: 0, toMs: 0, restartFraction: 0, restartAfterMs: 0 },
    discoverCount: 20,
    maxSimMs: 7 * 24 * 3600_000,
    ...over
  }
}

/**
 * Kumar–Ross lower bound on the time for all N hosts to hold F, in ms: max(F/u_s, F/d, N·F/(u_s + N·u)),
 * and F/L when the seeder still has to pull (cold). F/u_s is part of the bound — the seeder must send each
 * byte once — and matters for small N (one host: F/min(u_s, d)).
 * Source: R. Kumar, K. W. Ross, "Peer-assisted file distribution: the minimum distribution time", 2006.
 */
export function lowerBoundMs (s: Pick<Scenario, 'hosts' | 'modelBytes' | 'up' | 'down' | 'seederUp' | 'line' | 'warm'>): number {
  const F = s.modelBytes
  const terms = [F / s.seederUp, F / s.down, s.hosts * F / (s.seederUp + s.hosts * s.up)]
  if (!s.warm) terms.push(F / s.line)
  return Math.max(...terms) * 1000
}
