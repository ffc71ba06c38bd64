import { z } from 'zod';
import { BadRequest } from '../lib/errors.js';

/**
 * The one shape of every list answer under /api/v1: `items` (this page), `total` (matching rows, all
 * pages), `nextCursor` (pass it back as `?cursor=` for the next page; null on the last one). A request
 * takes `limit` (1-200, default 50) and `cursor`. A cursor is opaque: it is only valid with the same
 * filters and sort it came from, and what it holds (an offset, or the last row's sort key) may change
 * between versions.
 */
export interface ListPage<T> {
  items: T[];
  total: number;
  nextCursor: string | null;
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

export const limitField = z.coerce
  .number()
  .int('must be a whole number')
  .min(1, 'must be 1 or more')
  .max(MAX_LIMIT, `must be at most ${MAX_LIMIT}`);

/** `limit` and `cursor`, for list endpoints without other query parameters. */
export const pageQuery = z.object({
  limit: limitField.default(DEFAULT_LIMIT),
  cursor: z.string().max(512, 'is too long').optional(),
});

/** Makes an opaque cursor of a small JSON value. */
export function encodeCursor(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Reads a cursor made by {@link encodeCursor}; anything else is a 400 naming `cursor`. */
export function decodeCursor(cursor: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    /* below */
  }
  throw new BadRequest('cursor is not one this API handed out (pass nextCursor back as it is)', 'cursor');
}

/** The offset a cursor of {@link offsetPage} holds (0 without a cursor). */
export function cursorOffset(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  const o = decodeCursor(cursor).o;
  if (typeof o !== 'number' || !Number.isInteger(o) || o < 0)
    throw new BadRequest('cursor is not one this API handed out (pass nextCursor back as it is)', 'cursor');
  return o;
}

/**
 * The position a cursor of {@link keysetPage} holds: the offset (the page's place, for `total` and the
 * last page) and, when the list handed one out, the store's keyset position (`k`), from which the next
 * page is read straight off the index instead of skipping `offset` rows.
 */
export function keysetPosition(cursor: string | undefined): { offset: number; after?: string } {
  if (cursor === undefined) return { offset: 0 };
  const k = decodeCursor(cursor).k;
  if (k !== undefined && (typeof k !== 'string' || k.length === 0))
    throw new BadRequest('cursor is not one this API handed out (pass nextCursor back as it is)', 'cursor');
  return { offset: cursorOffset(cursor), ...(k === undefined ? {} : { after: k }) };
}

/**
 * A page of a list paged by the store's keyset cursor (`after`): like {@link offsetPage}, and the next
 * cursor also carries `after`, the store's position of this page's last row.
 */
export function keysetPage<T>(
  items: T[],
  total: number,
  offset: number,
  limit: number,
  after: string | undefined,
): ListPage<T> {
  const next = offset + limit;
  if (next >= total) return { items, total, nextCursor: null };
  return { items, total, nextCursor: encodeCursor(after ? { o: next, k: after } : { o: next }) };
}

/** A page of an offset-addressed list: `items` start at `offset` of `total`. */
export function offsetPage<T>(items: T[], total: number, offset: number, limit: number): ListPage<T> {
  const next = offset + limit;
  return { items, total, nextCursor: next < total ? encodeCursor({ o: next }) : null };
}

/** A page of a list that is read whole (devices, users, sessions, gateways, tokens): sliced here. */
export function listPage<T>(all: readonly T[], q: { limit: number; cursor?: string }): ListPage<T> {
  const offset = cursorOffset(q.cursor);
  return offsetPage(all.slice(offset, offset + q.limit), all.length, offset, q.limit);
}
