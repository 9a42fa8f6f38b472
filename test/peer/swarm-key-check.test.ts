/**
 * A swarm key that does not match is a refusal at once, never a time-out (src/peer/swarm-key-check.ts),
 * with real libp2p nodes on loopback. Without the check, about half the dials under another key hung until
 * the dial's own time-out (a decrypted length prefix that promised bytes which never came), and a dial
 * that times out is not counted as a refusal, so a host with the wrong key retried until its --timeout.
 * And the other way round: a dialer that only gave up is not logged as an outsider.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { Membership, MEMBERSHIP_MSG, refusalReason } from '../../src/peer/membership.ts'
import { errorOf } from '../support/errors.ts'
import { captureLog } from '../support/log-capture.ts'
import { loopbackNodes } from '../support/loopback-nodes.ts'
import { until } from '../support/poll.ts'

const node = loopbackNodes()

/** Dials per pair: each hung with probability ~0.6 before the check, so all 8 ending at once is its proof. */
const DIALS = 8

/** Far above a refusal on loopback (milliseconds), far below the test's limit. */
const DIAL_LIMIT_MS = 5000

describe('a swarm key that does not match', () => {
  const key = randomBytes(32)
  const cases: Array<[string, Uint8Array | undefined, Uint8Array | undefined, RegExp]> = [
    ['another key dials a member', randomBytes(32), key, /no swarm key or another one/],
    ['no key dials a member', undefined, key, /no swarm key or another one/],
    ['a member dials an open node', key, undefined, /holds a swarm key, and this swarm is open/]
  ]
  it.each(cases)('%s: every dial is refused, none times out, and the listener logs why', async (_, dialerKey, listenerKey, why) => {
    const { log, lines } = captureLog()
    const listener = await node(new Membership({ swarmKey: listenerKey, log }))
    const dialer = await node(new Membership({ swarmKey: dialerKey, log: captureLog().log }))
    for (let i = 0; i < DIALS; i++) {
      const err = await errorOf(dialer.dial(listener.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(DIAL_LIMIT_MS) }))
      expect(refusalReason(err), `dial ${i + 1}: ${String(err)}`).toMatch(/swarm key/)
    }
    const refused = lines.filter(l => l.msg === MEMBERSHIP_MSG.refused)
    expect(refused.length).toBeGreaterThan(0)
    expect(refused.every(l => why.test(l.reason)), JSON.stringify(refused)).toBe(true)
  }, 90_000)

  it('a dialer that gives up mid-handshake is no outsider: logged at debug, not as refused', async () => {
    const { log, lines } = captureLog()
    const listener = await node(new Membership({ swarmKey: key, log }))
    const port = Number(listener.getMultiaddrs()[0]!.getComponents().find(c => c.name === 'tcp')!.value)
    // What a host starting on a busy machine looks like when its dial's time-out ends it: a connection, then
    // nothing, then a close.
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.destroy()
    expect(await until(async () => lines.some(l => l.msg === 'inbound libp2p handshake failed'), 5000)).toBe(true)
    expect(lines.filter(l => l.msg === MEMBERSHIP_MSG.refused)).toEqual([])
  })

  it('members with the same key, and open nodes, still connect', async () => {
    const log = captureLog().log
    const [a, b] = await Promise.all([node(new Membership({ swarmKey: key, log })), node(new Membership({ swarmKey: key, log }))])
    await a!.dial(b!.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(DIAL_LIMIT_MS) })
    const [c, d] = await Promise.all([node(new Membership({ log })), node(new Membership({ log }))])
    await c!.dial(d!.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(DIAL_LIMIT_MS) })
    expect(await a!.services.ping.ping(b!.peerId)).toBeGreaterThanOrEqual(0)
    expect(await c!.services.ping.ping(d!.peerId)).toBeGreaterThanOrEqual(0)
  }, 30_000)
})
