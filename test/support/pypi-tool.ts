/**
 * Command-line tools from PyPI that tests drive as real clients or servers (moto's S3 server, the `aws` CLI),
 * pinned, each installed once into its own venv under `$MODELSWARM_TEST_TOOLS` (default
 * `~/.cache/modelswarm-test-tools`), outside the clone, so CI's fresh clones on one machine share it. A
 * `.installed` file written last marks a finished install, so a killed one is redone. The vitest global
 * setup installs them before any test runs (a first install takes one to two minutes); every failure says
 * why (no python3, pip failing): tests never skip silently. A tool already on the PATH is not used: the
 * pinned version is what the tests were written against.
 */
import { execFile } from 'node:child_process'
import { access, mkdir, open, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { lock, unlock } from 'os-lock'

const TOOLS = process.env.MODELSWARM_TEST_TOOLS ?? join(homedir(), '.cache', 'modelswarm-test-tools')
const installs = new Map<string, Promise<string>>()

/** The test tools and the versions the tests were written against. */
export const PYPI_TOOLS = {
  moto: { requirement: 'moto[server]==5.2.5', bin: 'moto_server' },
  aws: { requirement: 'awscli==1.46.3', bin: 'aws' }
} as const

/** Path of the tool's executable, installing it first unless present. Rejects naming what failed. */
export function pypiTool (tool: keyof typeof PYPI_TOOLS): Promise<string> {
  const { requirement, bin } = PYPI_TOOLS[tool]
  let install = installs.get(tool)
  if (install === undefined) {
    install = installTool(requirement, bin)
    installs.set(tool, install)
    install.catch(() => installs.delete(tool))
  }
  return install
}

async function installTool (requirement: string, bin: string): Promise<string> {
  const venv = join(TOOLS, requirement.replace(/[^A-Za-z0-9.]+/g, '-'))
  const path = join(venv, 'bin', bin)
  const installed = join(venv, '.installed')
  if (await access(installed).then(() => true, () => false)) return path
  // Two test runs on one machine (two clones) must not install into one venv at once: an fcntl lock, which
  // the kernel drops if the holder dies. A venv cannot be built elsewhere and renamed: its scripts name its path.
  await mkdir(TOOLS, { recursive: true })
  const fh = await open(`${venv}.lock`, 'a')
  try {
    await lock(fh.fd, { exclusive: true })
    if (await access(installed).then(() => true, () => false)) return path
    await install(venv, requirement, installed)
  } finally {
    await unlock(fh.fd).catch(() => {})
    await fh.close()
  }
  if (!await access(path).then(() => true, () => false)) throw new Error(`${requirement} installed into ${venv} but has no ${bin}`)
  return path
}

async function install (venv: string, requirement: string, installed: string): Promise<void> {
  await rm(venv, { recursive: true, force: true })
  const run = promisify(execFile)
  const python = process.env.MODELSWARM_PYTHON ?? 'python3'
  try {
    await run(python, ['-m', 'venv', venv], { timeout: 120_000 })
    await run(join(venv, 'bin', 'pip'), ['install', '-q', '--disable-pip-version-check', requirement], { timeout: 600_000, maxBuffer: 16 << 20 })
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`cannot install ${requirement} into ${venv} with ${python}: ${e.stderr?.trim().split('\n').slice(-5).join(' | ') || e.message}`, { cause: err })
  }
  await writeFile(installed, `${requirement}\n`)
}
