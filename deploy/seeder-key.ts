/**
 * The seeder's identity for a deployment: creates the key file if it is missing (the same libp2p protobuf
 * Ed25519 key `modelswarm seed` creates in <cache dir>/identity.key), then prints its peer id, the value
 * hosts pass to --trust and the Helm chart takes as seeder.peerId.
 *
 *   node deploy/seeder-key.ts identity.key        → {"peerId":"12D3KooW…","file":"identity.key","created":true}
 *   kubectl create secret generic modelswarm-seeder-identity --from-file=identity.key
 *
 * Exit status 2 on usage errors or a file that is not a libp2p private key.
 */
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { resolve } from 'node:path'
import { loadOrCreateKey } from '../src/seeder/identity.ts'

const [file, ...rest] = process.argv.slice(2)
if (file === undefined || rest.length > 0 || file.startsWith('-')) {
  process.stderr.write('usage: node deploy/seeder-key.ts KEYFILE   (created if missing; prints its peer id)\n')
  process.exit(2)
}
try {
  const { key, created } = await loadOrCreateKey(resolve(file))
  process.stdout.write(JSON.stringify({ peerId: peerIdFromPrivateKey(key).toString(), file, created }) + '\n')
} catch (err) {
  process.stderr.write(`seeder-key: ${(err as Error).message}\n`)
  process.exit(2)
}
