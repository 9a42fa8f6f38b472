/** Error codes to exit statuses and hints, in one place. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  integrity: 4,
  timeout: 5,
  diskFull: 6,
  locked: 7,
  interrupted: 130
} as const

const BY_CODE: Record<string, { exit?: number, hint?: string }> = {
  MS_INVALID_INPUT: { exit: EXIT.usage, hint: 'see --help' },
  MS_NOT_FOUND: { exit: EXIT.notFound, hint: 'check the model name and version; the seeder lists what it holds at /v1/models' },
  MS_INTEGRITY: { exit: EXIT.integrity, hint: 'data failed verification; nothing unverified was written' },
  MS_BAD_MANIFEST: { exit: EXIT.integrity },
  MS_UNTRUSTED: { exit: EXIT.integrity, hint: 'pass the seeder\'s peer id with --trust (it prints it at start)' },
  MS_TIMEOUT: { exit: EXIT.timeout, hint: 'check that a seeder is reachable (--bootstrap) and has the version; rerun to resume' },
  MS_DISK_FULL: { exit: EXIT.diskFull, hint: 'free space or choose another --out; verified chunks are kept for the next run' },
  MS_STORE_LOCKED: { exit: EXIT.locked, hint: 'another modelswarm process is writing the same directory' },
  MS_CACHE_FULL: { exit: EXIT.diskFull, hint: 'raise --cache-capacity, unpin versions or lower --keep-versions on the seeder' },
  MS_ADMIN_UNAVAILABLE: { hint: 'check --admin: the seeder prints its admin address at start' }
}

export function exitCodeFor (err: unknown): number {
  return BY_CODE[(err as { code?: string } | null | undefined)?.code ?? '']?.exit ?? EXIT.failure
}

export function hintFor (err: unknown): string | undefined {
  return BY_CODE[(err as { code?: string } | null | undefined)?.code ?? '']?.hint
}
