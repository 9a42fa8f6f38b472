/** The members-only options every command that runs a libp2p node shares: swarm key and allow-list. */
import { AllowList } from '../peer/allow-list.ts'
import { loadSwarmKey } from '../peer/swarm-key.ts'

export interface MembershipCommandOptions {
  swarmKeyFile?: string
  allowPeers?: string[]
  allowCidr?: string[]
}

/**
 * The swarm key read from its file and the allow-list, checked before any node starts.
 * @throws SwarmKeyError when the key file is missing or malformed; InvalidInputError for a bad peer id or range
 */
export async function loadMembership (opts: MembershipCommandOptions): Promise<{ swarmKey?: Uint8Array, allow: AllowList }> {
  return {
    swarmKey: opts.swarmKeyFile === undefined ? undefined : await loadSwarmKey(opts.swarmKeyFile),
    allow: new AllowList({ peers: opts.allowPeers, cidrs: opts.allowCidr })
  }
}
