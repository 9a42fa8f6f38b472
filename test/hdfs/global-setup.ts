// Builds the MiniDFSCluster launcher once before any test runs: on a machine with a cold Maven cache
// the download takes minutes, more than a test hook may wait.
import { ensureBuilt } from './mini-hdfs.ts'

export default async function setup (): Promise<void> {
  await ensureBuilt()
}
