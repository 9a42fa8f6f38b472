/**
 * The event engine: one seeder and N hosts, each a HostModel, joined by messages that take `latencyMs`
 * and by chunk transfers that are flows through the sender's upload and the receiver's download links
 * (network.ts). The cold seeder pulls over the line with the real pull plan (planReads) under the real
 * token bucket. Deterministic: every random choice comes from generators seeded from `scenario.seed`.
 *
 * Modelled: per-host u/d, the seeder's u_s, the line L, one-way latency per message (a session takes
 * 4 one-way delays to open: TCP, Noise, hello), late arrivals, kills and restarts with the chunks held.
 * Not modelled: CPU (hashing, encryption), disk, TCP dynamics (see network.ts), origin latency per read,
 * bad data and bans, relaying of signed hashes between peers (every host also holds a session with the
 * seeder, which sends them directly).
 */
import { Bitfield } from '../chunker/bitfield.ts'
import { chunkLayout, type ChunkLayout } from '../chunker/manifest.ts'
import { planReads } from '../seeder/pull-plan.ts'
import { UploadPolicy } from '../seeder/upload-policy.ts'
import { createRng, randomInt, type Rng } from '../util/random.ts'
import { TokenBucket } from '../util/token-bucket.ts'
import { EventQueue, type Scheduled } from './event-queue.ts'
import { HostModel, type HostIo, type Role, type ServeDecision } from './host-model.ts'
import { Link, Network, type Flow } from './network.ts'
import type { Scenario } from './scenario.ts'

export interface HostResult {
  id: string
  /** When the host first started, ms. */
  startedAt: number
  /** When it first held every chunk, ms; undefined if it never did (killed for good, or the run gave up). */
  completedAt: number | undefined
  /** Whether it was killed and not restarted. */
  killed: boolean
}

export interface SimResult {
  hosts: HostResult[]
  /** Simulated time when the run ended, ms. */
  endedAt: number
  /** Bytes the seeder sent, and bytes over the line. */
  seederBytes: number
  lineBytes: number
  /** Bytes all hosts received (cancelled transfers' partial bytes included), and sent. */
  hostBytesDown: number
  hostBytesUp: number
  /** Chunks the hosts hold at the end, all hosts together, and the most they can (N × chunks). */
  chunksHeld: number
  chunksTotal: number
  /** Whether RunOptions#stop ended the run. */
  stopped: boolean
  events: number
  /** The seeder's answers to chunk requests (a queued request counts once, when answered): where a storm shows. */
  seederAnswers: SeederAnswers
}

export interface SeederAnswers { ok: number, busy: number, refused: number, missing: number }

interface SimNode {
  id: string
  /** Its place among all nodes (seeder 0), for numeric request keys. */
  num: number
  role: Role
  model: HostModel
  up: Link
  down: Link
  alive: boolean
  /** Requests this node sent or is serving, so a kill can end them. */
  reqs: Set<Req>
  /** Requests this node sent, by reqKey, so it can cancel them. */
  out: Map<number, Req>
  startedAt: number
  completedAt: number | undefined
  killed: boolean
  tick: Scheduled | undefined
}

interface Req {
  from: SimNode
  to: SimNode
  fromModel: HostModel
  index: number
  flow: Flow | undefined
  /** Waiting in the server's upload queue. */
  queued: boolean
  cancelled: boolean
}

const SEEDER = 's'
/** Opening a session: TCP handshake, Noise XX, hello and bitfield — about two round trips. */
const SESSION_DELAYS = 4

export interface Progress {
  /** Simulated time, ms. */
  at: number
  completed: number
  expected: number
  /** Chunks the hosts hold, all hosts together, and the most they can (N × chunks). */
  chunksHeld: number
  chunksTotal: number
  /** Bytes the seeder has sent and bytes over the line so far (flows still running counted as of their last rate change). */
  seederBytes: number
  lineBytes: number
  events: number
}

export interface RunOptions {
  /** Called every `progressEveryMs` of simulated time (long runs take minutes). */
  onProgress?: (p: Progress) => void
  /** @default 10_000 */
  progressEveryMs?: number
  /** Asked every 65,536 events; true ends the run where it is, hosts not done counting as not done. */
  stop?: () => boolean
}

/** Runs a scenario to the end, or until `maxSimMs` or `opts.stop`. */
export function simulate (s: Scenario, opts: RunOptions = {}): SimResult {
  return new SwarmSim(s, opts).run()
}

class SwarmSim {
  readonly #s: Scenario
  readonly #queue = new EventQueue()
  readonly #net = new Network(this.#queue)
  readonly #layout: ChunkLayout
  readonly #rng: Rng
  readonly #nodes = new Map<string, SimNode>()
  readonly #hosts: SimNode[] = []
  readonly #seeder: SimNode
  readonly #line: Link
  /** Started, live hosts, for discovery samples. */
  readonly #live: string[] = []
  readonly #liveAt = new Map<string, number>()
  /** Every node's `have` bitfield, node `num` at num × #haveBytes (HostModel's haveStorage). */
  readonly #held: Uint8Array
  readonly #haveBytes: number
  #expected: number
  #completed = 0
  #chunksHeld = 0
  #lineBytes = 0
  readonly #seederAnswers: SeederAnswers = { ok: 0, busy: 0, refused: 0, missing: 0 }

  readonly #opts: RunOptions

  constructor (s: Scenario, opts: RunOptions) {
    this.#s = s
    this.#opts = opts
    this.#rng = createRng(s.seed)
    const fileSize = Math.ceil(s.modelBytes / s.files)
    const files = Array.from({ length: s.files }, (_, i) => ({ path: `model-${String(i).padStart(5, '0')}.bin`, size: Math.min(fileSize, s.modelBytes - i * fileSize), mode: 0o644 }))
    this.#layout = chunkLayout({ name: 'sim', version: '1', revision: '', chunkSize: s.chunkSize, files, dirs: [] })
    this.#line = new Link(s.line)
    this.#haveBytes = Math.ceil(this.#layout.count / 8)
    this.#held = new Uint8Array((s.hosts + 1) * this.#haveBytes)
    this.#seeder = this.#newNode(SEEDER, 'seeder', s.seederUp, Infinity)
    const n = this.#layout.count
    const held = new Bitfield(n)
    if (s.warm) for (let i = 0; i < n; i++) held.set(i)
    this.#seeder.model = this.#newModel(this.#seeder, held, held)
    this.#nodes.set(SEEDER, this.#seeder)
    for (let i = 0; i < s.hosts; i++) {
      const node = this.#newNode(`h${i}`, 'peer', s.up, s.down)
      this.#hosts.push(node)
      this.#nodes.set(node.id, node)
    }
    this.#expected = s.hosts
  }

  run (): SimResult {
    const s = this.#s
    if (!s.warm) this.#pull()
    for (const node of this.#hosts) {
      const late = this.#rng() < s.arrivals.lateFraction
      const at = late ? this.#rng() * s.arrivals.windowMs : 0
      this.#queue.at(at, () => this.#start(node, new Bitfield(this.#layout.count)))
    }
    this.#scheduleFailures()
    const stopped = this.#runQueue()
    let down = 0
    let up = 0
    for (const h of this.#hosts) {
      down += h.down.carried
      up += h.up.carried
    }
    return {
      hosts: this.#hosts.map(h => ({ id: h.id, startedAt: h.startedAt, completedAt: h.completedAt, killed: h.killed })),
      endedAt: this.#queue.now,
      seederBytes: this.#seeder.up.carried,
      lineBytes: this.#lineBytes,
      hostBytesDown: down,
      hostBytesUp: up,
      chunksHeld: this.#chunksHeld,
      chunksTotal: this.#hosts.length * this.#layout.count,
      stopped,
      events: this.#queue.processed,
      seederAnswers: { ...this.#seederAnswers }
    }
  }

  /**
   * Runs events until every host is done, maxSimMs, or stop(); in slices of progressEveryMs when progress
   * is reported, so reports add no events. Returns whether stop() ended it.
   */
  #runQueue (): boolean {
    const q = this.#queue
    const { onProgress, progressEveryMs = 10_000, stop } = this.#opts
    let stopped = false
    let k = 0
    const done = (): boolean => this.#completed >= this.#expected || (stop !== undefined && (++k & 0xffff) === 0 && (stopped = stop()))
    if (onProgress === undefined) {
      q.run(this.#s.maxSimMs, done)
      return stopped
    }
    for (let t = progressEveryMs; ; t += progressEveryMs) {
      q.run(Math.min(t, this.#s.maxSimMs), done)
      if (stopped || this.#completed >= this.#expected || q.size === 0 || t >= this.#s.maxSimMs) return stopped
      onProgress({
        at: t,
        completed: this.#completed,
        expected: this.#expected,
        chunksHeld: this.#chunksHeld,
        chunksTotal: this.#hosts.length * this.#layout.count,
        seederBytes: this.#seeder.up.carried,
        lineBytes: this.#lineBytes,
        events: q.processed
      })
    }
  }

  #newNode (id: string, role: Role, up: number, down: number): SimNode {
    // The model is made when the node starts; until then nothing can reach it (no one has its id).
    return {
      id, num: this.#nodes.size, role, model: undefined as unknown as HostModel, up: new Link(up), down: new Link(down), alive: false,
      reqs: new Set(), out: new Map(),
      startedAt: NaN, completedAt: undefined, killed: false, tick: undefined
    }
  }

  /** A fresh HostModel for `node` (a restart gets a new one: sessions and requests are gone, chunks are not). */
  #newModel (node: SimNode, have: Bitfield, known: Bitfield): HostModel {
    const n = this.#layout.count
    const seed = (this.#s.seed * 1_000_003 + hashId(node.id)) >>> 0
    const gate = node.role === 'seeder' ? new UploadPolicy({ numChunks: n, rng: createRng(seed ^ 0x5eed), ...this.#s.policy }) : undefined
    const model: HostModel = new HostModel({
      id: node.id,
      role: node.role,
      chunkSize: this.#s.chunkSize,
      lengths: this.#layout.length,
      have,
      haveStorage: this.#held.subarray(node.num * this.#haveBytes, (node.num + 1) * this.#haveBytes),
      known,
      rng: createRng(seed),
      options: this.#s.driver,
      gate,
      io: this.#io(node, () => model)
    })
    node.alive = true
    return model
  }

  // --- What a host asks of the world ------------------------------------------------------------

  #io (node: SimNode, self: () => HostModel): HostIo {
    const q = this.#queue
    const lat = this.#s.latencyMs
    /** Whether `node` is still the incarnation that made the call. */
    const current = (): boolean => node.alive && node.model === self()
    return {
      now: () => q.now,
      dial: peer => {
        const target = this.#nodes.get(peer)!
        const model = self()
        q.after(SESSION_DELAYS * lat, () => {
          if (!current()) return
          if (!target.alive) {
            model.dialFailed(peer)
            return
          }
          this.#openSession(node, target)
        })
      },
      request: (peer, index, failedHolders) => this.#request(node, self(), this.#nodes.get(peer)!, index, failedHolders ?? []),
      cancel: (peer, index) => this.#cancel(node.out.get(this.#reqKey(this.#nodes.get(peer)!, index))),
      announce: (index, to) => {
        if (to.length === 0) return
        const recipients = to.slice()
        const byte = index >> 3
        const bit = 0x80 >> (index & 7)
        q.after(lat, () => {
          for (const id of recipients) {
            const r = this.#nodes.get(id)!
            if (!r.alive) continue
            // A host ignores a HAVE for a chunk it holds (HostModel#onHave); the seeder's policy counts it.
            if (r.role === 'peer' && (this.#held[r.num * this.#haveBytes + byte]! & bit) !== 0) continue
            r.model.onHave(node.id, index)
          }
        })
      },
      publish: (index, to) => {
        const recipients = to.slice()
        q.after(lat, () => {
          for (const id of recipients) {
            const r = this.#nodes.get(id)!
            if (r.alive) r.model.onAvailable(index)
          }
        })
      },
      hint: (peer, hints) => {
        const target = this.#nodes.get(peer)!
        const model = target.model
        q.after(lat, () => { if (target.alive && target.model === model) model.onHints(hints) })
      },
      discover: () => this.#discover(node.id),
      soon: fn => { q.defer(() => { if (current()) fn() }) },
      later: (ms, fn) => { q.after(ms, () => { if (current()) fn() }) },
      complete: () => this.#completedHost(node)
    }
  }

  #openSession (a: SimNode, b: SimNode): void {
    // Signed hashes come before the bitfield: a host learns what the seeder has published on joining.
    if (b.role === 'seeder') for (const i of b.model.known.setIndexes()) a.model.onAvailable(i)
    if (a.role === 'seeder') for (const i of a.model.known.setIndexes()) b.model.onAvailable(i)
    a.model.attach(b.id, b.role, b.model.bitfieldFor(a.role))
    b.model.attach(a.id, a.role, a.model.bitfieldFor(b.role))
  }

  #discover (self: string): string[] {
    const out: string[] = []
    const n = this.#live.length
    for (let k = 0; k < Math.min(this.#s.discoverCount, n); k++) {
      const id = this.#live[randomInt(this.#rng, n)]!
      if (id !== self && !out.includes(id)) out.push(id)
    }
    return out
  }

  // --- Chunk requests ------------------------------------------------------------------------------

  #request (from: SimNode, fromModel: HostModel, to: SimNode, index: number, failedHolders: readonly string[]): void {
    const q = this.#queue
    const lat = this.#s.latencyMs
    const req: Req = { from, to, fromModel, index, flow: undefined, queued: false, cancelled: false }
    from.out.set(this.#reqKey(to, index), req)
    from.reqs.add(req)
    to.reqs.add(req)
    q.after(lat, () => {
      if (req.cancelled) return
      if (!to.alive) return // the requester detaches from the dead node and cancels
      const server = to.model
      const answer = (later: ServeDecision): void => { if (to.alive && to.model === server) this.#answer(req, later) }
      const decision = server.serve(from.id, index, failedHolders, answer, fromModel.have.count)
      if (decision.status === 'queued') req.queued = true
      else this.#answer(req, decision)
    })
  }

  /** Carries out the server's answer to a request: a transfer, or a message back. */
  #answer (req: Req, decision: ServeDecision): void {
    const q = this.#queue
    const lat = this.#s.latencyMs
    const { from, to, fromModel, index } = req
    req.queued = false
    if (to === this.#seeder) this.#seederAnswers[decision.status]++
    if (decision.status !== 'ok') {
      q.after(lat, () => {
        if (req.cancelled) return
        this.#forget(req)
        fromModel.onResponse(to.id, index, decision)
      })
      return
    }
    const bytes = this.#layout.length[index]!
    const serverModel = to.model
    req.flow = this.#net.start([to.up, from.down], bytes, () => {
      req.flow = undefined
      serverModel.uploadEnded(from.id, index, bytes)
      q.after(lat, () => {
        if (req.cancelled) return
        this.#forget(req)
        const held = fromModel.have.count
        if (fromModel.onDelivered(to.id, index, bytes)) fromModel.onWritten(to.id, index)
        this.#chunksHeld += fromModel.have.count - held
      })
    })
  }


  #cancel (req: Req | undefined): void {
    if (req === undefined || req.cancelled) return
    req.cancelled = true
    this.#forget(req)
    if (req.queued && req.to.alive) req.to.model.unqueue(req.from.id, req.index)
    if (req.flow !== undefined) {
      const sent = this.#net.abort(req.flow)
      req.flow = undefined
      if (req.to.alive) req.to.model.uploadEnded(req.from.id, req.index, sent)
    }
  }

  /** A request's key among those its sender made: the server and the chunk. */
  #reqKey (to: SimNode, index: number): number {
    return to.num * this.#layout.count + index
  }

  #forget (req: Req): void {
    const key = this.#reqKey(req.to, req.index)
    if (req.from.out.get(key) === req) req.from.out.delete(key)
    req.from.reqs.delete(req)
    req.to.reqs.delete(req)
  }

  // --- Lifecycle -----------------------------------------------------------------------------------

  #start (node: SimNode, have: Bitfield): void {
    if (Number.isNaN(node.startedAt)) node.startedAt = this.#queue.now
    // A host knows no chunk hashes until the seeder's session sends them.
    node.model = this.#newModel(node, have, new Bitfield(this.#layout.count))
    this.#liveAt.set(node.id, this.#live.length)
    this.#live.push(node.id)
    node.model.connect(SEEDER)
    if (node.model.complete) this.#completedHost(node)
    else this.#scheduleTick(node, node.model, this.#rng() * this.#s.driver.tickMs)
  }

  #scheduleTick (node: SimNode, model: HostModel, delay: number): void {
    node.tick = this.#queue.after(delay, () => {
      if (!node.alive || node.model !== model || model.complete) return
      model.tick()
      this.#scheduleTick(node, model, this.#s.driver.tickMs)
    })
  }

  #completedHost (node: SimNode): void {
    if (node.completedAt !== undefined) return
    node.completedAt = this.#queue.now
    this.#completed++
  }

  #scheduleFailures (): void {
    const f = this.#s.failures
    if (f.killFraction <= 0) return
    for (const node of this.#hosts) {
      if (this.#rng() >= f.killFraction) continue
      const at = f.fromMs + this.#rng() * (f.toMs - f.fromMs)
      const restart = this.#rng() < f.restartFraction
      this.#queue.at(at, () => {
        // A host that finished before its kill counts as done; it still leaves the swarm.
        if (!node.alive) return
        this.#kill(node)
        if (restart) this.#queue.after(f.restartAfterMs, () => this.#start(node, node.model.have))
        else if (node.completedAt === undefined) {
          node.killed = true
          this.#expected--
        }
      })
    }
  }

  /** The process dies: its transfers stop now, its neighbours see the session close one delay later. */
  #kill (node: SimNode): void {
    node.alive = false
    this.#queue.cancel(node.tick)
    const at = this.#liveAt.get(node.id)!
    const last = this.#live.pop()!
    if (last !== node.id) {
      this.#live[at] = last
      this.#liveAt.set(last, at)
    }
    this.#liveAt.delete(node.id)
    for (const req of [...node.reqs]) this.#cancel(req)
    const neighbours = node.model.neighbourIds().slice()
    this.#queue.after(this.#s.latencyMs, () => {
      for (const id of neighbours) {
        const n = this.#nodes.get(id)!
        if (n.alive) n.model.detach(node.id)
      }
    })
  }

  // --- The seeder's pull ---------------------------------------------------------------------------

  /**
   * Cold start: `parallel` readers take ranges from planReads in order; each fills 1 MiB regions (the
   * puller's REGION_BYTES) and pays for each in the line's token bucket (the seeder's: burst
   * max(256 KiB, L/50), starting empty) before filling the next. A chunk is stored, and announced, when
   * its last region is filled. The origin itself is taken as faster than the line.
   */
  #pull (): void {
    const s = this.#s
    const layout = this.#layout
    const q = this.#queue
    const bucket = new TokenBucket({ rate: s.line, burst: Math.max(256 * 1024, Math.floor(s.line / 50)), initial: 0, now: () => q.now })
    const missing = Array.from({ length: layout.count }, (_, i) => i)
    const ranges = planReads(layout, missing, { parallel: s.pull.parallel, rangeBytes: s.pull.rangeBytes })
    let next = 0
    let stored = 0
    const region = 1024 * 1024
    // The seeder's tick: chunks revealed to peers that did not take them are told to others.
    const tick = (): void => {
      if (this.#completed >= this.#expected) return
      this.#seeder.model.tick()
      q.after(s.driver.tickMs, tick)
    }
    q.after(s.driver.tickMs, tick)
    const readRange = (first: number, end: number, index: number, got: number): void => {
      if (index >= end) {
        startWorker()
        return
      }
      const length = layout.length[index]!
      const n = Math.min(region, length - got)
      this.#lineBytes += n
      this.#line.carried += n
      if (got + n === length) {
        this.#seeder.model.published(index)
        if (++stored === layout.count) this.#seeder.model.pulled()
      }
      let wait = 0
      for (let left = n; left > 0; left -= bucket.burst) wait = bucket.reserve(Math.min(left, bucket.burst), q.now)
      const [ni, ng] = got + n === length ? [index + 1, 0] : [index, got + n]
      q.after(wait, () => readRange(first, end, ni, ng))
    }
    const startWorker = (): void => {
      if (next >= ranges.length) return
      const r = ranges[next++]!
      readRange(r.first, r.first + r.count, r.first, 0)
    }
    for (let w = 0; w < Math.min(s.pull.parallel, Math.max(1, ranges.length)); w++) startWorker()
  }
}


/** FNV-1a of a node id, to give each node its own random streams from one run seed. */
function hashId (id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return h >>> 0
}
