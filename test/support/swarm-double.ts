/** A stand-in for the parts of a VersionSwarm the gateway's VersionView uses: the store's bitfield, 'chunk' events, setPriority. */
import { EventEmitter } from 'node:events'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { chunkLayout, type ManifestHeader } from '../../src/chunker/manifest.ts'
import { VersionView } from '../../src/gateway/version-view.ts'
import type { VersionSwarm } from '../../src/peer/version-swarm.ts'

export class SwarmDouble extends EventEmitter {
  readonly store: { have: Bitfield, header: ManifestHeader }
  readonly priorities = new Map<number, number>()
  constructor (header: ManifestHeader) {
    super()
    this.store = { have: new Bitfield(chunkLayout(header).count), header }
  }

  setPriority (index: number, priority: number): void { this.priorities.set(index, priority) }
  /** Chunk `index` is verified: held, and announced to the view. */
  verify (index: number): void {
    this.store.have.set(index)
    this.emit('chunk', index, 'peer')
  }
}

/** A view of `header` still arriving, attached to a double of its swarm. */
export function fetchingView (header: ManifestHeader): { view: VersionView, swarm: SwarmDouble } {
  const view = new VersionView({ header, dir: '/cache/m/v1', lastModified: new Date(0), complete: false })
  const swarm = new SwarmDouble(header)
  view.attach(swarm as unknown as VersionSwarm)
  return { view, swarm }
}
