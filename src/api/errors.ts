import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { AppError, ValidationError, type FieldIssue } from '../domain/errors.js';
import type { Logger } from '../log.js';

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Entity',
  429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable',
};

/**
 * One body that satisfies both vendors: FastAPI's `detail` (Vocode SDKs) and Nest's
 * `message`/`error`/`statusCode` (Fluents clients).
 */
export function errorBody(status: number, message: string, issues?: FieldIssue[]) {
  return {
    detail: issues ?? message,
    message,
    error: REASONS[status] ?? 'Error',
    statusCode: status,
  };
}

export function sendError(c: Context, status: number, message: string, issues?: FieldIssue[]) {
  return c.json(errorBody(status, message, issues), status as 400);
}

export function onError(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof ValidationError) return sendError(c, 422, err.message, err.issues);
    if (err instanceof AppError) return sendError(c, err.status, err.message);
    if (err instanceof HTTPException) return sendError(c, err.status, err.message || REASONS[err.status] || 'error');
    log.error({ err, path: c.req.path, method: c.req.method }, 'unhandled error');
    return sendError(c, 500, 'internal error; the server log has the details');
  };
}
