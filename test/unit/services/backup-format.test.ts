import assert from 'node:assert/strict';
import {
  BACKUP_MAGIC,
  decodeBackup,
  encodeBackup,
  readBackupHeader,
  safeEntryPath,
  WRONG_BACKUP_PASSPHRASE,
  type BackupInfo,
} from '../../../src/services/backup-format.js';

const PASS = 'correct horse battery staple';
const info: BackupInfo = {
  createdAt: '2026-11-30T23:00:00.000Z',
  podgateVersion: '0.1.0',
  schemaVersion: 3,
  certificates: 2,
  revoked: 1,
  crlNumber: 4,
};
const entries = [
  { path: 'podgate.db', mode: 0o600, data: Buffer.from('database bytes') },
  { path: 'ca.crt', mode: 0o644, data: Buffer.from('-----BEGIN CERTIFICATE-----\n') },
  { path: 'sub/dir/file', mode: 0o600, data: Buffer.alloc(0) },
];

/** The error a bad file must give: a 400 whose message contains `re`. */
const fails = (re: RegExp) => (e: Error & { status?: number }) => e.status === 400 && re.test(e.message);

describe('backup file format', () => {
  const file = encodeBackup(entries, info, PASS);

  it('round-trips every file, its mode and the info', () => {
    const d = decodeBackup(file, PASS);
    assert.deepEqual(d.info, info);
    assert.deepEqual(
      d.entries.map((e) => [e.path, e.mode, e.data.toString()]),
      entries.map((e) => [e.path, e.mode, e.data.toString()]),
    );
  });

  it('starts with PGBACKUP, format version 1, and a header naming aes-256-gcm and scrypt', () => {
    assert.ok(file.subarray(0, 8).equals(BACKUP_MAGIC));
    const { version, header } = readBackupHeader(file);
    assert.equal(version, 1);
    assert.equal(header.cipher, 'aes-256-gcm');
    assert.equal(header.kdf.name, 'scrypt');
    assert.equal(header.kdf.N, 32768);
    assert.equal(header.createdAt, info.createdAt);
  });

  it('does not show the file names or contents in the clear', () => {
    assert.equal(file.includes(Buffer.from('podgate.db')), false);
    assert.equal(file.includes(Buffer.from('database bytes')), false);
  });

  it('400 wrong passphrase', () => {
    assert.throws(
      () => decodeBackup(file, 'another passphrase!'),
      fails(new RegExp(WRONG_BACKUP_PASSPHRASE)),
    );
  });

  it('400 when one byte of the ciphertext, the tag or the header changes', () => {
    const { headerEnd } = readBackupHeader(file);
    for (const at of [headerEnd + 3, file.length - 1, file.length - 20]) {
      const bad = Buffer.from(file);
      bad[at]! ^= 0x01;
      assert.throws(() => decodeBackup(bad, PASS), fails(/wrong passphrase, or the file was altered/));
    }
    // the createdAt inside the header is authenticated too (same length, different digit)
    const text = file.toString('latin1').replace('2026-11-30T23', '2026-11-30T22');
    assert.throws(() => decodeBackup(Buffer.from(text, 'latin1'), PASS), fails(/altered/));
  });

  it('400 weakened key derivation in the header (N lowered) is caught by authentication', () => {
    const text = file.toString('latin1').replace('"N":32768', '"N":16384');
    assert.throws(() => decodeBackup(Buffer.from(text, 'latin1'), PASS), fails(/altered/));
  });

  it('400 not a backup, truncated, newer format version', () => {
    assert.throws(
      () => decodeBackup(Buffer.from('hello world, not a backup'), PASS),
      fails(/not a podgate backup/),
    );
    assert.throws(() => decodeBackup(file.subarray(0, 40), PASS), fails(/truncated|damaged/));
    const v2 = Buffer.from(file);
    v2[8] = 2;
    assert.throws(() => decodeBackup(v2, PASS), fails(/format version 2 is not supported/));
  });

  it('400 a header asking for absurd scrypt memory, before any key derivation', () => {
    const text = file.toString('latin1').replace('"N":32768', '"N":99999');
    assert.throws(
      () => decodeBackup(Buffer.from(text, 'latin1'), PASS),
      fails(/out-of-range key derivation/),
    );
  });

  it('entry paths stay inside the data dir', () => {
    for (const p of ['podgate.db', 'a/b.c', 'ca-key.kek']) assert.equal(safeEntryPath(p), true, p);
    for (const p of ['', '/etc/passwd', '../x', 'a/../b', 'a//b', './a', 'a b', 'a\\b'])
      assert.equal(safeEntryPath(p), false, p);
    assert.throws(() => encodeBackup([{ path: '../evil', mode: 0o600, data: Buffer.alloc(1) }], info, PASS));
  });
});
