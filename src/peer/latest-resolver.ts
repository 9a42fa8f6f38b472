/**
 * Which version is NAME@latest, asked of the bootstrap seeders through the process's node (peer-host.ts), for
 * a fetch that must know the concrete version before it picks a directory (the host cache) and for follow
 * mode, which asks again at an interval. The process's node, not one of its own: only it has the swarm key
 * and the identity the seeders admit (a bare node was refused by a seeder in a private swarm, so follow never
 * found its first version there).
 */
import { IntegrityError, UntrustedSignerError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { resolveFromSeeders, type Bootstrap } from './protocols/resolve/client.ts'
import { dialBootstrap, metaFromItems, parseBootstrap } from './fetch.ts'
import { SEEDER_DIAL_TIMEOUT_MS, type SwarmNode } from './node.ts'
import type { VersionMeta } from './publications.ts'
import { TrustList } from './signed.ts'

export interface LatestResolverInit {
  name: string
  /** Seeder multiaddrs ending in /p2p/<peer id>, as fetch takes them. */
  bootstrap: string[]
  /** Seeder peer ids whose signed `latest` pointers are accepted. */
  trust: string[]
  /** The running node to ask through; the caller stops it. */
  node: SwarmNode
  log: Logger
}

export class LatestResolver {
  readonly #init: LatestResolverInit
  readonly #node: SwarmNode
  readonly #bootstrap: Bootstrap[]
  readonly #trust: TrustList

  private constructor (init: LatestResolverInit, bootstrap: Bootstrap[], node: SwarmNode) {
    this.#init = init
    this.#node = node
    this.#bootstrap = bootstrap
    this.#trust = new TrustList(init.trust)
  }

  /** @throws InvalidInputError for a bad bootstrap address */
  static start (init: LatestResolverInit): LatestResolver {
    return new LatestResolver(init, init.bootstrap.map(parseBootstrap), init.node)
  }

  /**
   * The latest version, asking round after round with fetch's rules.
   * @throws NotFoundError when every seeder says it has no version of the model; TimeoutError after `timeoutMs`;
   *   IntegrityError / UntrustedSignerError for a pointer that fails verification
   */
  async resolve (timeoutMs: number, signal?: AbortSignal): Promise<VersionMeta> {
    return await this.#ask(timeoutMs, this.#init.log, signal)
  }

  /** One round of asking; undefined when no seeder answers with a verified pointer (the reason is logged at debug). */
  async poll (signal?: AbortSignal): Promise<VersionMeta | undefined> {
    try {
      // A deadline already past makes the resolver stop after its first round (its retry warnings are not wanted here).
      return await this.#ask(-1, this.#init.log.child({}, { level: 'error' }), signal)
    } catch (err) {
      this.#init.log.debug({ err: (err as Error).message }, 'latest poll failed')
      return undefined
    }
  }

  async #ask (timeoutMs: number, log: Logger, signal?: AbortSignal): Promise<VersionMeta> {
    const { name } = this.#init
    return await resolveFromSeeders(this.#node, this.#bootstrap, { name, version: undefined }, items => metaFromItems(items, name, undefined, this.#trust), {
      dial: (addr, s) => dialBootstrap(this.#node, addr, s),
      timeoutMs,
      dialTimeoutMs: SEEDER_DIAL_TIMEOUT_MS,
      resolveTimeoutMs: 30_000,
      isFinal: err => err instanceof IntegrityError || err instanceof UntrustedSignerError,
      log,
      signal
    })
  }
}
