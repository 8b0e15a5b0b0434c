// The client's errors, apart from the client itself: a caller can tell them apart without loading the HTTP stack.

/** The server said no: its status, error code and message. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The server could not be reached at all (refused, DNS, TLS, timeout). */
export class NetworkError extends Error {
  override name = 'NetworkError';
}
