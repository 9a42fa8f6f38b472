/**
 * Builds a planned topology out of real network namespaces (root only) and removes it again. Deleting a
 * namespace deletes its veth ends, so teardown is one `ip netns del` per namespace; it is registered with
 * teardown.ts before the first namespace exists, so a failure half-way through still cleans up.
 */
import { execFileSync } from 'node:child_process'
import { LabError } from './lab-error.ts'
import { LAB_PREFIX_LEN, tbfArgs, type Topology } from './topology.ts'
import { onTeardown } from './teardown.ts'

export interface Lab {
  topology: Topology
  /** Removes every namespace (processes still inside must be stopped first; see processes.ts). */
  destroy: () => void
}

function ip (...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

function tc (ns: string, args: string[]): void {
  execFileSync('tc', ['-n', ns, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
}

/** Tools the lab runs, how to ask each for its version, and the Debian package that has it. */
const TOOLS = [['ip', '-V', 'iproute2'], ['tc', '-V', 'iproute2'], ['curl', '--version', 'curl'], ['java', '-version', 'openjdk-17-jdk-headless'], ['mvn', '--version', 'maven']] as const

/** Fails with a clear message unless we are root with every tool the lab runs. */
export function checkLabPrerequisites (): void {
  if (process.getuid?.() !== 0) throw new LabError('the network lab needs root (network namespaces, veth, tc)')
  for (const [tool, versionFlag, pkg] of TOOLS) {
    try {
      execFileSync(tool, [versionFlag], { stdio: 'ignore' })
    } catch {
      throw new LabError(`\`${tool}\` not found: apt-get update && apt-get install -y ${pkg}`)
    }
  }
}

export function createLab (topology: Topology): Lab {
  checkLabPrerequisites()
  const created: string[] = []
  const destroy = onTeardown(() => {
    for (const ns of created.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns)
      } catch { /* already gone */ }
    }
  })
  try {
    const sw = topology.switchNs
    ip('netns', 'add', sw)
    created.push(sw)
    ip('-n', sw, 'link', 'set', 'lo', 'up')
    const mtu = String(topology.mtu)
    ip('-n', sw, 'link', 'add', 'br0', 'mtu', mtu, 'type', 'bridge')
    ip('-n', sw, 'link', 'set', 'br0', 'up')
    for (const node of topology.nodes) {
      ip('netns', 'add', node.netns)
      created.push(node.netns)
      ip('link', 'add', node.role, 'netns', sw, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.netns, 'mtu', mtu)
      ip('-n', sw, 'link', 'set', node.role, 'master', 'br0', 'up')
      ip('-n', node.netns, 'link', 'set', 'lo', 'up')
      ip('-n', node.netns, 'addr', 'add', `${node.addr}/${LAB_PREFIX_LEN}`, 'dev', 'eth0')
      ip('-n', node.netns, 'link', 'set', 'eth0', 'up')
      if (node.rates.up !== undefined) tc(node.netns, tbfArgs('eth0', node.rates.up))
      if (node.rates.down !== undefined) tc(sw, tbfArgs(node.role, node.rates.down))
    }
  } catch (err) {
    destroy()
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim()
    throw new LabError(`cannot build the lab network: ${stderr ?? (err as Error).message}`)
  }
  return { topology, destroy }
}
