// Installs the PyPI tools tests drive (moto, the S3 server of the S3 origin tests; the aws CLI, a client of the
// read gateway) once before any test runs: a first install downloads from PyPI for a minute or two, more than
// a test hook should wait.
import { pypiTool } from '../support/pypi-tool.ts'

export default async function setup (): Promise<void> {
  await pypiTool('moto')
  await pypiTool('aws')
}
