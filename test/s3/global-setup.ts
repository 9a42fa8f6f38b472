// Installs moto (the S3 server of the S3 origin tests) once before any test runs: the first install
// downloads from PyPI for about a minute, more than a test hook should wait.
import { ensureMoto } from './moto.ts'

export default async function setup (): Promise<void> {
  await ensureMoto()
}
