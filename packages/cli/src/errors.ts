import { ApiError, NetworkError } from '@codebay/api-client/errors';

/** Exit codes, one per class of outcome, so scripts can tell them apart. */
export const EXIT = {
  ok: 0,
  /** The server refused or failed the request for another reason (4xx/5xx not below). */
  error: 1,
  /** Wrong command line, unreadable file, bad config file. */
  usage: 2,
  /** No token, or the token is not accepted (401/403). */
  auth: 3,
  /** No such instance (404). */
  notFound: 4,
  /** The instance (its build or provisioning) failed. */
  failed: 5,
  /** `--timeout` passed before the instance was Running. */
  timeout: 6,
  /** codebay could not be reached at all. */
  unreachable: 7,
} as const;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** An outcome that is not an exception of the program: the instance failed, or waiting timed out. */
export class OutcomeError extends Error {
  override name = 'OutcomeError';
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code: string,
  ) {
    super(message);
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof OutcomeError) return err.exitCode;
  if (err instanceof NetworkError) return EXIT.unreachable;
  if (err instanceof ApiError) {
    if (err.status === 401 || err.status === 403) return EXIT.auth;
    if (err.status === 404) return EXIT.notFound;
    return EXIT.error;
  }
  return EXIT.error;
}

/** The code a script sees in `--json` errors. */
export function errorCodeOf(err: unknown): string {
  if (err instanceof ApiError) return err.code;
  if (err instanceof OutcomeError) return err.code;
  if (err instanceof UsageError) return 'usage';
  if (err instanceof NetworkError) return 'unreachable';
  return 'internal';
}
