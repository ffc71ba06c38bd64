/**
 * The one error type of podgate. `message` is always safe to show to a user;
 * internal detail goes in `cause` (logged, never rendered).
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown; field?: string; retryAfterSeconds?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.field = options?.field;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
  /** The input field (path) that was wrong, when there is one. */
  readonly field: string | undefined;
  /**
   * For a refusal that passes with time (429, 503): whole seconds after which the same request may
   * succeed. The web renderer sends it as `Retry-After`.
   */
  readonly retryAfterSeconds: number | undefined;
}

export class BadRequest extends AppError {
  constructor(message: string, field?: string, cause?: unknown) {
    super(400, 'bad_request', message, { field, cause });
  }
}
export class Unauthorized extends AppError {
  constructor(message = 'authentication required') {
    super(401, 'unauthorized', message);
  }
}
export class Forbidden extends AppError {
  constructor(message = 'forbidden') {
    super(403, 'forbidden', message);
  }
}
export class NotFound extends AppError {
  constructor(message = 'not found') {
    super(404, 'not_found', message);
  }
}
export class Conflict extends AppError {
  constructor(message: string, field?: string) {
    super(409, 'conflict', message, { field });
  }
}
export class TooManyRequests extends AppError {
  constructor(message = 'too many requests, try again later', retryAfterSeconds?: number) {
    super(429, 'too_many_requests', message, { retryAfterSeconds });
  }
}
export class Upstream extends AppError {
  constructor(message: string, cause?: unknown) {
    super(502, 'upstream', message, { cause });
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
