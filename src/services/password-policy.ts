import { createRequire } from 'node:module';
import { BadRequest } from '../lib/errors.js';

/**
 * The one password rule of podgate, used by every way a password is set (web, API, CLI, first admin):
 * 12 to 1024 characters, at least 5 different characters, and not a well-known password, also not
 * one with only digits or symbols added at either end ("password1234!"). Sign-in never applies it:
 * an old password that predates the rule still works until it is changed.
 *
 * The list of well-known passwords is the ~49,000-entry "passwords" dictionary of zxcvbn-ts
 * (@zxcvbn-ts/language-common, MIT; built from leaked-password frequency lists), loaded on first use.
 */
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;
const MIN_DISTINCT = 5;

let common: Set<string> | undefined;

function commonPasswords(): Set<string> {
  if (!common) {
    const require = createRequire(import.meta.url);
    const list = require('@zxcvbn-ts/language-common/src/passwords.json') as string[];
    common = new Set(list.map((p) => p.toLowerCase()));
  }
  return common;
}

/** True when the password, or its core without digits and symbols at the ends, is a well-known one. */
export function isCommonPassword(password: string): boolean {
  const lower = password.toLowerCase();
  const list = commonPasswords();
  if (list.has(lower)) return true;
  const core = lower.replace(/^[\d\W_]+|[\d\W_]+$/g, '');
  return core.length >= 4 && list.has(core);
}

/** Returns the password, or throws BadRequest naming `field` and the rule that failed. */
export function validatePassword(field: string, password: unknown): string {
  if (
    typeof password !== 'string' ||
    password.length < MIN_PASSWORD_LENGTH ||
    password.length > MAX_PASSWORD_LENGTH
  ) {
    throw new BadRequest(
      `${field} must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long`,
      field,
    );
  }
  if (new Set(password).size < MIN_DISTINCT) {
    throw new BadRequest(`${field} must use at least ${MIN_DISTINCT} different characters`, field);
  }
  if (isCommonPassword(password)) {
    throw new BadRequest(`${field} is a well-known password; choose another`, field);
  }
  return password;
}
