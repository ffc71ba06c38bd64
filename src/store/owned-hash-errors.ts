/**
 * Constraint errors of the rows keyed by a secret's hash and owned by a user (API tokens, import
 * links), mapped the same way on both engines: better-sqlite3 reports SQLite's extended result codes,
 * node-postgres the SQLSTATE (23505 unique, including a primary key; 23503 foreign key).
 */
import { BadRequest, Conflict } from '../lib/errors.js';

/** The kind of constraint a driver error of either engine reports, or undefined for anything else. */
export function brokenConstraint(err: unknown): 'unique' | 'foreign-key' | undefined {
  switch ((err as { code?: unknown } | null)?.code) {
    case 'SQLITE_CONSTRAINT_UNIQUE':
    case 'SQLITE_CONSTRAINT_PRIMARYKEY':
    case '23505':
      return 'unique';
    case 'SQLITE_CONSTRAINT_FOREIGNKEY':
    case '23503':
      return 'foreign-key';
    default:
      return undefined;
  }
}

/**
 * An insert of a hash-keyed row for `userId` failed: an unknown owner is a 400 naming `userId`, a hash
 * already stored a 409 naming `tokenHash`; any other error is returned as it is (the caller throws it).
 */
export function ownedHashError(err: unknown, userId: number): unknown {
  switch (brokenConstraint(err)) {
    case 'foreign-key':
      return new BadRequest(`userId ${userId} does not exist`, 'userId');
    case 'unique':
      return new Conflict('this token hash is already stored', 'tokenHash');
    default:
      return err;
  }
}
