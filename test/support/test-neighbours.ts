/**
 * A Neighbours for tests: version 'h' of 8 chunks, 12 neighbours, a seeded Rng, silent logs and callbacks
 * that do nothing, each replaceable through `init`.
 */
import { silentLogger } from '../../src/log.ts'
import { Neighbours, type NeighboursInit } from '../../src/peer/neighbours.ts'
import type { SwarmComponents } from '../../src/peer/swarm-components.ts'
import { SwarmLog } from '../../src/peer/swarm-log.ts'
import { createRng } from '../../src/util/random.ts'

export function testNeighbours (components: SwarmComponents, init: Partial<NeighboursInit> = {}): Neighbours {
  return new Neighbours({
    components,
    headerId: 'h',
    role: 'peer',
    chunkCount: 8,
    maxNeighbours: 12,
    rng: createRng(1),
    log: new SwarmLog(silentLogger),
    onJoin: () => {},
    onMessage: async () => {},
    onLeave: () => {},
    ...init
  })
}
