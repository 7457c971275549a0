import { describe, expect, it } from 'vitest';
import { databaseTrouble } from '../../src/store/db-errors.js';

// What main.ts and `saga checkout` say in one line (the database's trouble) rather than as a bug.

function pgError(code: string, message: string): Error {
  // The shape of pg's DatabaseError: a message, a SQLSTATE `code`, a `severity`.
  return Object.assign(new Error(message), { code, severity: 'FATAL' });
}

function codeError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('databaseTrouble', () => {
  it.each([
    [pgError('57P01', 'terminating connection due to administrator command'), 'terminating connection due to administrator command (SQLSTATE 57P01)'],
    [pgError('57P03', 'the database system is starting up'), 'the database system is starting up (SQLSTATE 57P03)'],
    [pgError('53300', 'sorry, too many clients already'), 'sorry, too many clients already (SQLSTATE 53300)'],
    [pgError('53100', 'could not extend file: No space left on device'), 'could not extend file: No space left on device (SQLSTATE 53100)'],
    [pgError('08006', 'connection failure'), 'connection failure (SQLSTATE 08006)'],
    [pgError('58030', 'could not write to file'), 'could not write to file (SQLSTATE 58030)'],
    [pgError('55000', 'database "x" is not currently accepting connections'), 'database "x" is not currently accepting connections (SQLSTATE 55000)'],
    [pgError('3D000', 'database "x" does not exist'), 'database "x" does not exist (SQLSTATE 3D000)'],
    [pgError('XX001', 'invalid page in block 7'), 'invalid page in block 7 (SQLSTATE XX001)'],
    [pgError('42501', 'permission denied for schema saga'), 'permission denied for schema saga (SQLSTATE 42501)'],
    [pgError('25006', 'cannot execute INSERT in a read-only transaction'), 'cannot execute INSERT in a read-only transaction (SQLSTATE 25006)'],
    [new Error('Connection terminated unexpectedly'), 'Connection terminated unexpectedly'],
    [new Error('timeout exceeded when trying to connect'), 'timeout exceeded when trying to connect'],
    [codeError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'), 'connect ECONNREFUSED 127.0.0.1:5432'],
    [codeError('ECONNRESET', 'read ECONNRESET'), 'read ECONNRESET'],
    [codeError('SQLITE_FULL', 'database or disk is full'), 'SQLITE_FULL: database or disk is full'],
    [codeError('SQLITE_IOERR_WRITE', 'disk I/O error'), 'SQLITE_IOERR_WRITE: disk I/O error'],
    [codeError('SQLITE_BUSY', 'database is locked'), 'SQLITE_BUSY: database is locked'],
    [codeError('SQLITE_CORRUPT', 'database disk image is malformed'), 'SQLITE_CORRUPT: database disk image is malformed'],
  ])('%s is the database', (err, said) => {
    expect(databaseTrouble(err)).toBe(said);
  });

  it.each([
    pgError('42P01', 'relation "products" does not exist'),
    pgError('42601', 'syntax error at or near "SELEC"'),
    pgError('42502', 'a neighbour of 42501 that is not about privileges'),
    pgError('23505', 'duplicate key value violates unique constraint'),
    pgError('40P01', 'deadlock detected'),
    codeError('57P01', 'a code that looks like SQLSTATE on an error that is not from the server'),
    new TypeError("Cannot read properties of undefined (reading 'rows')"),
    'not even an Error',
  ])('%s may be a bug', (err) => {
    expect(databaseTrouble(err)).toBeUndefined();
  });
});
