/**
 * `node bench/picker-bench.ts [chunks...]`: microseconds per PiecePicker.pick in a steady state — 12
 * neighbours each holding a random half of the chunks, a seeder holding all, nothing held locally, every
 * chunk available — picking 4 at a time from a random neighbour, each pick handed back (a refusal with no
 * back-off) so the wanted set stays full. The figure quoted in src/peer/piece-picker.ts comes from here.
 */
import { Bitfield } from '../src/chunker/bitfield.ts'
import { PiecePicker } from '../src/peer/piece-picker.ts'
import { createRng, randomInt } from '../src/util/random.ts'

function bench (n: number): number {
  const rng = createRng(7)
  const picker = new PiecePicker({ numChunks: n, have: new Bitfield(n), rng })
  for (let i = 0; i < n; i++) picker.setAvailable(i)
  const peers = Array.from({ length: 12 }, (_, k) => `p${k}`)
  for (const p of peers) {
    const bits = new Bitfield(n)
    for (let i = 0; i < n; i++) if (rng() < 0.5) bits.set(i)
    picker.addPeer(p, bits)
  }
  const all = new Bitfield(n)
  for (let i = 0; i < n; i++) all.set(i)
  picker.addPeer('seeder', all, { seeder: true })
  let now = 0
  const round = (): void => {
    const peer = peers[randomInt(rng, peers.length)]!
    now++
    for (const c of picker.pick(peer, 4, now)) picker.requestFailed(peer, c, now, { refused: true, retryAfterMs: 0 })
  }
  for (let k = 0; k < 200; k++) round()
  const rounds = Math.max(200, Math.min(20_000, Math.floor(2e8 / n)))
  const t0 = performance.now()
  for (let k = 0; k < rounds; k++) round()
  return (performance.now() - t0) * 1000 / rounds
}

const sizes = process.argv.slice(2).map(Number)
for (const n of sizes.length > 0 ? sizes : [1000, 100_000]) console.log(`${n} chunks: ${bench(n).toFixed(2)} µs per pick`)
