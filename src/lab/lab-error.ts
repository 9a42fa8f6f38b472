import { ModelswarmError } from '../errors.ts'

/** The lab cannot run or a run went wrong: not root, a missing tool, a process that died, outputs that differ. */
export class LabError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_LAB', message, options) }
}
