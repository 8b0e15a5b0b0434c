/**
 * Typed domain errors. The gateway maps them to HTTP with one JSON body
 * (`{"error":{"code","message","details?"}}`); workers map them to job outcomes.
 */
export class CodebayError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details?: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class InputError extends CodebayError {
  constructor(code: string, message: string, details?: unknown) {
    super(400, code, message, details);
  }
}

export class UnprocessableError extends CodebayError {
  constructor(code: string, message: string, details?: unknown) {
    super(422, code, message, details);
  }
}

export class UnauthorizedError extends CodebayError {
  constructor(message = 'a valid API token is required (Authorization: Bearer <token>)') {
    super(401, 'unauthorized', message);
  }
}

export class ForbiddenError extends CodebayError {
  constructor(code: string, message: string) {
    super(403, code, message);
  }
}

export class NotFoundError extends CodebayError {
  constructor(what: string) {
    super(404, 'not_found', `${what} not found`);
  }
}

export class ConflictError extends CodebayError {
  constructor(code: string, message: string) {
    super(409, code, message);
  }
}

export class TooManyRequestsError extends CodebayError {
  constructor(message: string) {
    super(429, 'quota_exceeded', message);
  }
}

export class PayloadTooLargeError extends CodebayError {
  constructor(message: string) {
    super(413, 'payload_too_large', message);
  }
}

/** A job failure that retrying cannot fix (bad input, a failing build step). */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentError';
  }
}

/** A job failure that may go away by itself (daemon restarting, network, registry 5xx). */
export class TransientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransientError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** How many problems one error message and its `details.problems` list at most. */
export const MAX_LISTED_PROBLEMS = 20;

/**
 * Several problems of one request as one message: a single problem as it is; several as
 * `<count> <what>: <first>; <second>; …` with the first `max` (MAX_LISTED_PROBLEMS), then
 * `; and N more`. `listed` is what the message names (for `details.problems`), `count` all of them.
 */
export function listProblems(problems: readonly string[], what: string, max = MAX_LISTED_PROBLEMS): { message: string; listed: string[]; count: number } {
  const listed = problems.slice(0, max);
  const more = problems.length - listed.length;
  const message = problems.length === 1 ? problems[0]! : `${problems.length} ${what}: ${listed.join('; ')}${more > 0 ? `; and ${more} more` : ''}`;
  return { message, listed, count: problems.length };
}
