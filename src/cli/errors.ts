/**
 * Exit codes scripts can rely on, and the one error type commands throw: its message is printed on stderr as
 * is, so it must name what was wrong (the argument, the flag, the run).
 */
export const EXIT = {
  /** Done: the run started or joined, the status shown, the decision accepted, every check passed. */
  OK: 0,
  /** Refused or wrong: no such run, nothing waits for a decision, the decision was refused, a check failed. */
  FAILED: 1,
  /** Bad usage: an unknown command or flag, a bad argument or value, bad configuration in the environment. */
  USAGE: 2,
  /** Temporal could not be reached (address, TLS, the server down). */
  TEMPORAL_UNREACHABLE: 3,
  /** validate-nodegroup only: a check could not be made (Kubernetes or VPSie unreachable, or not configured). */
  UNCHECKED: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

/** A bad argument, flag or value: exit 2. */
export const usageError = (message: string): CliError => new CliError(message, EXIT.USAGE);
/** Not found, refused, or wrong: exit 1. */
export const failure = (message: string): CliError => new CliError(message, EXIT.FAILED);
