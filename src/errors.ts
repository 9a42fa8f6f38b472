/**
 * Typed errors. Every failure a user or caller can act on has a class with a stable `code`;
 * the CLI maps codes to exit statuses in one place (src/cli/exit-codes.ts).
 */
export class ModelswarmError extends Error {
  readonly code: string

  constructor (code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** Input that breaks a documented rule: a malformed manifest, a bad flag value, a path escaping its root. */
export class InvalidInputError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_INVALID_INPUT', message, options) }
}

/** Bytes whose SHA-256 does not match the manifest, or data whose signature does not verify. */
export class IntegrityError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_INTEGRITY', message, options) }
}

/** Not enough free space on the target filesystem (checked up front, or ENOSPC while writing). */
export class DiskFullError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_DISK_FULL', message, options) }
}

/** Another live process holds the store's lock. */
export class StoreLockedError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_STORE_LOCKED', message, options) }
}

/** A model, version, file or chunk that does not exist where it was looked for. */
export class NotFoundError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_NOT_FOUND', message, options) }
}

/** No progress within the allowed time. */
export class TimeoutError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_TIMEOUT', message, options) }
}

/** A manifest or version header that fails decoding or validation. */
export class ManifestError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_BAD_MANIFEST', message, options) }
}
