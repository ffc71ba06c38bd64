import Database from 'better-sqlite3';
import { BadRequest } from '../lib/errors.js';

/** Runs fn in one write transaction (a savepoint when already inside one). */
export type Tx = <T>(fn: () => T) => T;

/** ISO-8601 UTC text for a Date, or a 400 naming the field when it is not a valid Date. */
export function toIso(field: string, value: Date): string {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new BadRequest(`${field} must be a valid date`, field);
  }
  return value.toISOString();
}

export function toIsoOrNull(field: string, value: Date | null | undefined): string | null {
  return value == null ? null : toIso(field, value);
}

export function fromIso(text: string): Date {
  return new Date(text);
}

export function fromIsoOrNull(text: string | null): Date | null {
  return text === null ? null : new Date(text);
}

/** Throws a 400 naming the field unless value is one of the allowed strings. */
export function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new BadRequest(`${field} must be one of ${allowed.join(', ')}`, field);
  }
  return value as T;
}

/** Throws a 400 naming the field unless value is an integer >= min. */
export function intAtLeast(field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new BadRequest(`${field} must be an integer >= ${min}`, field);
  }
  return value;
}

/** Throws a 400 naming the field unless value is a string (empty allowed). */
export function text(field: string, value: unknown): string {
  if (typeof value !== 'string') throw new BadRequest(`${field} must be a string`, field);
  return value;
}

/** Throws a 400 naming the field unless value is a non-empty string. */
export function nonEmpty(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new BadRequest(`${field} must be a non-empty string`, field);
  }
  return value;
}

/** JSON text of a plain object, or a 400 naming the field (cycles, BigInt, arrays, non-objects). */
export function toJsonObject(field: string, value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequest(`${field} must be a JSON object`, field);
  }
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new BadRequest(`${field} must be serialisable as JSON`, field, err);
  }
}

/** The SQLite extended result code (e.g. SQLITE_CONSTRAINT_UNIQUE) of a better-sqlite3 error. */
export function sqliteCode(err: unknown): string | undefined {
  return err instanceof Database.SqliteError ? err.code : undefined;
}

/**
 * A LIKE pattern matching `text` as a literal substring: `\`, `%` and `_` are escaped, so use the
 * pattern with `ESCAPE '\'`. Case-insensitive for ASCII only (SQLite's LIKE without ICU).
 */
export function likeSubstring(text: string): string {
  return `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/**
 * The synchronous shape of an async store interface: the SQLite repositories run each method to the end
 * on the one connection (better-sqlite3 is synchronous); SqliteStore wraps them in Promises.
 */
export type Sync<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : T[K];
};
