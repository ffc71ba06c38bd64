/**
 * The ONE place where a remote command line is built. An SSH `exec` request carries a single string that
 * the remote login shell parses, so every argv element is wrapped in POSIX single quotes: inside '...'
 * nothing is special except the closing quote, which is written as '\'' (close, escaped quote, reopen).
 * This holds for sh, dash, bash, ksh and zsh; csh/fish are not supported as the gateway user's shell.
 */
import { BadRequest } from '../lib/errors.js';

/** Arguments that need no quoting: keeps logged commands readable. Deliberately narrow (no globs, no `~`). */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one argument. NUL cannot be passed through exec() argv at all, so it is refused instead of being
 * silently truncated by the remote side. Empty strings become ''.
 */
export function quoteArg(arg: string): string {
  if (typeof arg !== 'string') throw new BadRequest('shell argument must be a string');
  if (arg.includes('\0')) throw new BadRequest('shell argument contains a NUL byte');
  if (arg !== '' && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Joins argv into one shell command line whose words, after parsing by a POSIX shell, are exactly argv.
 * A leading `-` is not the quoter's business (quoting cannot stop an option): callers put `--` before
 * operands that come from input, and validate them first.
 */
export function shellJoin(argv: readonly string[]): string {
  if (argv.length === 0) throw new BadRequest('empty command');
  return argv.map(quoteArg).join(' ');
}
