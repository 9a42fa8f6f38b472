/** Every modelswarm protocol id starts with this, so modelswarm nodes never speak to (or pollute) other libp2p networks. */
export const PROTOCOL_PREFIX = '/modelswarm'
