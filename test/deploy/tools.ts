/**
 * The external tools test/deploy runs, installed once by install-tools.sh (helm, kubernetes-validate,
 * hadolint into a cache dir; debootstrap, umoci, runc, systemd-analyze from Debian).
 */
import { execFile, execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export const REPO = fileURLToPath(new URL('../../', import.meta.url))
export const CHART = join(REPO, 'deploy/helm/modelswarm')

export interface DeployTools { helm: string, kubernetesValidate: string, hadolint: string }

let tools: DeployTools | undefined

/** Installs what is missing (minutes on a clean machine: run it in a hook with a long timeout), then the paths. */
export function ensureDeployTools (): DeployTools {
  if (tools !== undefined) return tools
  const bin = execFileSync(join(REPO, 'test/deploy/install-tools.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
  tools = { helm: join(bin, 'helm'), kubernetesValidate: join(bin, 'kubernetes-validate'), hadolint: join(bin, 'hadolint') }
  return tools
}

export interface Ran { code: number, stdout: string, stderr: string }

/** Runs a command to its end; a non-zero exit is a result, not an exception. */
export async function runTool (file: string, args: string[]): Promise<Ran> {
  try {
    const { stdout, stderr } = await promisify(execFile)(file, args, { maxBuffer: 64 * 1024 * 1024 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: unknown, stdout?: string, stderr?: string }
    if (typeof e.code !== 'number') throw err
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

/** How long installing the tools on a clean machine may take (go install of helm, pip, apt). */
export const INSTALL_TIMEOUT_MS = 900_000
