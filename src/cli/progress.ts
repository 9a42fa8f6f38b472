/** Download progress: a one-line bar on a TTY (drawn through its TtyLog, below the logs), a JSON line every few seconds otherwise. */
import type { Logger } from '../log.ts'
import type { TtyLog } from './tty-log.ts'
import { formatModelVersion } from '../model-version.ts'
import { formatBytes, formatRate } from '../util/units.ts'
import type { VersionSwarm } from '../peer/version-swarm.ts'

export function showProgress (swarm: VersionSwarm, opts: { tty?: TtyLog, log: Logger }): () => void {
  const total = swarm.store.layout.totalSize
  const label = formatModelVersion(swarm.meta.header)
  let lastBytes = swarm.stats.bytesDown
  let lastAt = Date.now()
  let rate = 0
  const sample = (): void => {
    const now = Date.now()
    if (now - lastAt >= 1000) {
      rate = (swarm.stats.bytesDown - lastBytes) * 1000 / (now - lastAt)
      lastBytes = swarm.stats.bytesDown
      lastAt = now
    }
  }
  const render = (): void => {
    sample()
    const have = swarm.store.haveBytes
    const pct = total === 0 ? 100 : Math.floor(have * 100 / total)
    if (opts.tty !== undefined) {
      const width = 30
      const filled = Math.round(width * pct / 100)
      const eta = rate > 0 ? `${Math.ceil((total - have) / rate)}s` : '?'
      const stalled = swarm.stalledReason === undefined ? '' : `  stalled: ${swarm.stalledReason}`
      opts.tty.status(`${label} ${String(pct).padStart(3)}% [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${formatBytes(have)}/${formatBytes(total)} ${formatRate(rate)} peers ${swarm.neighbours} eta ${eta}${stalled}`)
    } else {
      opts.log.info({ event: 'progress', version: label, have: swarm.store.have.count, chunks: swarm.store.layout.count, bytes: have, total, rate: Math.round(rate), neighbours: swarm.neighbours, bytesUp: swarm.stats.bytesUp, stalled: swarm.stalledReason }, 'progress')
    }
  }
  const timer = setInterval(render, opts.tty !== undefined ? 200 : 2000)
  timer.unref()
  return () => {
    clearInterval(timer)
    render()
    opts.tty?.endStatus()
  }
}
