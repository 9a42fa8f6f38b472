/**
 * A node's swarm settings by default, shared by VersionSwarm and the simulator's hosts (src/sim/host-model.ts)
 * so a simulated node runs the numbers a real one does. Each is documented where it is an option
 * (VersionSwarmOptions); why each value, in the modules that use it (upload-admission.ts,
 * download-planner.ts) and docs/simulator.md.
 */
export const SWARM_DEFAULTS = {
  maxNeighbours: 12,
  maxRequestsPerPeer: 4,
  maxBufferedBytes: 32 * 1024 * 1024,
  maxUploads: 8,
  maxUploadsPerPeer: 1,
  uploadQueue: 2,
  requestIdleMs: 20_000,
  tickMs: 2000
} as const
