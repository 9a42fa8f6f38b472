/**
 * Command-line tools from PyPI that tests drive as real clients or servers (the `aws` CLI, moto's server),
 * pinned, each installed on first use into its own virtualenv under the user's cache folder, outside the
 * clone, so CI's fresh clones on one machine install it once. A tool already on the PATH is not used: the
 * pinned version is what the tests were written against.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * Path of executable `bin` of PyPI package `pkg` at `version`, installing it first if needed (≈ 30 s for
 * awscli). Throws with pip's output when it cannot be installed, so a test fails with the reason rather than skip.
 */
export async function pypiTool (pkg: string, version: string, bin: string): Promise<string> {
  const venv = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'modelswarm-test', `${pkg}-${version}`)
  const path = join(venv, 'bin', bin)
  if (existsSync(path)) return path
  try {
    await run('python3', ['-m', 'venv', venv])
    await run(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `${pkg}==${version}`], { maxBuffer: 16 * 1024 * 1024 })
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`cannot install ${pkg}==${version} from PyPI into ${venv}: ${e.stderr ?? e.message}`, { cause: err })
  }
  if (!existsSync(path)) throw new Error(`${pkg}==${version} installed into ${venv} but has no ${bin}`)
  return path
}
