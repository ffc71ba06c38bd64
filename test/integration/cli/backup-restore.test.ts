/**
 * `podgate backup` and `podgate restore` through the real CLI on real SQLite files: a restored data
 * dir holds the same users, certificates, revocations, CRL (same number, next one continues), server
 * identity and stored discovery, issues certificates openssl verifies against the restored CA; and
 * every bad input (wrong passphrase, non-empty target, altered file, short passphrase) exits 2 and
 * writes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../../src/lib/exec.js';
import { openStore } from '../../../src/store/index.js';
import { DISCOVERY_SETTING } from '../../../src/services/network.js';
import { profileBlock, runCli, tempDir } from '../../helpers/cli.js';

interface CertRow {
  serial: string;
  commonName: string;
  status: string;
  revocationReason?: string;
}

describe('CLI: backup and restore', function () {
  this.timeout(120_000);
  const t = tempDir();
  const src = join(t.dir, 'data');
  const pass = join(t.dir, 'backup.pass');
  const wrong = join(t.dir, 'wrong.pass');
  const short = join(t.dir, 'short.pass');
  const backupFile = join(t.dir, 'b1.pgbackup');
  const env = { PODGATE_VPN_ENDPOINTS: '172.18.12.21' };
  const cli = (dataDir: string, ...args: string[]) => runCli(['--data-dir', dataDir, ...args], env);
  const certs = async (dataDir: string): Promise<CertRow[]> => {
    const r = await cli(dataDir, '--json', 'cert', 'list');
    assert.equal(r.code, 0, r.stderr);
    const parsed = JSON.parse(r.stdout) as CertRow[] | { items: CertRow[] };
    return (Array.isArray(parsed) ? parsed : parsed.items).sort((a, b) => a.serial.localeCompare(b.serial));
  };
  const crlNumber = async (dataDir: string): Promise<number> => {
    const out = join(t.dir, `crl-${Date.now()}.pem`);
    assert.equal((await cli(dataDir, 'crl', '--out', out)).code, 0);
    const text = (await exec(['openssl', 'crl', '-in', out, '-noout', '-text'])).stdout;
    return Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)![1]);
  };

  before(async () => {
    writeFileSync(pass, 'a long backup passphrase\n');
    writeFileSync(wrong, 'another long passphrase\n');
    writeFileSync(short, 'too short\n');
    writeFileSync(join(t.dir, 'admin.pw'), 'admin-password-for-tests\n');
    const init = await runCli(['--data-dir', src, 'init'], {
      ...env,
      PODGATE_ADMIN_PASSWORD_FILE: join(t.dir, 'admin.pw'),
    });
    assert.equal(init.code, 0, init.stderr);
    assert.equal((await cli(src, 'user', 'add', 'alice')).code, 0);
    for (const n of ['alice-laptop', 'alice-phone', 'alice-tablet']) {
      const r = await cli(src, 'cert', 'issue', n, '--owner', 'alice', '--out', join(t.dir, `${n}.ovpn`));
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await cli(src, 'cert', 'revoke', 'alice-phone', '--reason', 'keyCompromise')).code, 0);
    const store = openStore(src);
    await store.setSetting(
      DISCOVERY_SETTING,
      JSON.stringify({ podCidrs: ['10.244.0.0/16'], nodeIps: ['172.18.12.21'] }),
    );
    await store.close();
  });
  after(() => t.cleanup());

  it('writes a 0600 backup and audits it', async () => {
    const r = await cli(src, 'backup', '--out', backupFile, '--passphrase-file', pass);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /certificates, 1 revoked, CRL #\d+/);
    assert.equal(statSync(backupFile).mode & 0o777, 0o600);
    assert.equal(readFileSync(backupFile).subarray(0, 8).toString(), 'PGBACKUP');
    const store = openStore(src);
    try {
      assert.equal((await store.listAudit({ action: 'backup.create' })).length, 1);
    } finally {
      await store.close();
    }
  });

  it('exit 2 and nothing written: wrong passphrase, short passphrase, altered file, non-empty target', async () => {
    const target = join(t.dir, 'never');
    let r = await cli(target, 'restore', backupFile, '--passphrase-file', wrong);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /wrong passphrase, or the file was altered/);
    r = await cli(target, 'restore', backupFile, '--passphrase-file', short);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /passphrase-file must hold at least 12 characters/);
    const altered = join(t.dir, 'altered.pgbackup');
    const bytes = readFileSync(backupFile);
    bytes[bytes.length - 100]! ^= 0x40;
    writeFileSync(altered, bytes);
    r = await cli(target, 'restore', altered, '--passphrase-file', pass);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /altered/);
    r = await cli(target, 'restore', join(t.dir, 'missing.pgbackup'), '--passphrase-file', pass);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot be read/);
    assert.equal(existsSync(target), false, 'no target dir was made');

    const busy = join(t.dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'keep.txt'), 'x');
    r = await cli(busy, 'restore', backupFile, '--passphrase-file', pass);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /is not empty/);
    assert.deepEqual(readdirSync(busy), ['keep.txt']);
    // and no staging dir was left beside the targets
    assert.deepEqual(
      readdirSync(t.dir).filter((n) => n.includes('.restore-')),
      [],
    );
    // refusing to overwrite a backup file
    r = await cli(src, 'backup', '--out', backupFile, '--passphrase-file', pass);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /already exists/);
  });

  it('restores into an empty dir: same certificates, CRL, discovery; the CRL number continues; new issues verify', async () => {
    const dst = join(t.dir, 'restored');
    mkdirSync(dst); // empty and existing is accepted
    const before = await certs(src);
    const crlBefore = await crlNumber(src);
    const r = await cli(dst, 'restore', backupFile, '--passphrase-file', pass);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /restored \d+ files/);
    assert.equal(statSync(dst).mode & 0o777, 0o700);
    assert.deepEqual(await certs(dst), before);
    assert.equal(await crlNumber(dst), crlBefore);
    assert.equal(readFileSync(join(dst, 'ca.crt'), 'utf8'), readFileSync(join(src, 'ca.crt'), 'utf8'));
    assert.equal(existsSync(join(dst, 'server')), false, 'runtime files are not restored');

    const store = openStore(dst);
    try {
      assert.deepEqual(JSON.parse((await store.getSetting(DISCOVERY_SETTING))!), {
        podCidrs: ['10.244.0.0/16'],
        nodeIps: ['172.18.12.21'],
      });
      assert.equal(await store.getSetting('server.identity'), await openStoreSetting(src, 'server.identity'));
      assert.equal((await store.listAudit({ action: 'backup.restore' })).length, 1);
      assert.ok(await store.getUserByName('alice'));
    } finally {
      await store.close();
    }

    // after the restore: a new certificate from the restored CA, a revocation continues the CRL numbers
    const out = join(t.dir, 'after.ovpn');
    assert.equal((await cli(dst, 'cert', 'issue', 'alice-new', '--owner', 'alice', '--out', out)).code, 0);
    const crt = join(t.dir, 'after.crt');
    writeFileSync(crt, profileBlock(readFileSync(out, 'utf8'), 'cert'));
    const v = await exec(['openssl', 'verify', '-CAfile', join(dst, 'ca.crt'), crt]);
    assert.match(v.stdout, /: OK/);
    assert.equal((await cli(dst, 'cert', 'revoke', 'alice-tablet')).code, 0);
    assert.equal(await crlNumber(dst), crlBefore + 1);
    const revoked = (await certs(dst)).filter((c) => c.status === 'revoked').map((c) => c.commonName);
    assert.deepEqual(revoked.sort(), ['alice-phone', 'alice-tablet']);
  });

  it('--crl-number-above re-signs the restored CRL above a number the server has already seen', async () => {
    const dst = join(t.dir, 'renumbered');
    const inBackup = await crlNumber(src);
    let r = await cli(dst, 'restore', backupFile, '--passphrase-file', pass, '--crl-number-above', 'x1');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--crl-number-above must be a whole number/);
    r = await cli(
      dst,
      'restore',
      backupFile,
      '--passphrase-file',
      pass,
      '--crl-number-above',
      String(inBackup + 40),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`CRL #${inBackup + 41}\\)`));
    assert.equal(await crlNumber(dst), inBackup + 41);
    const revoked = (await certs(dst)).filter((c) => c.status === 'revoked').map((c) => c.commonName);
    assert.deepEqual(revoked, ['alice-phone'], 'same entries, new number');
  });
});

async function openStoreSetting(dataDir: string, key: string): Promise<string | undefined> {
  const s = openStore(dataDir);
  try {
    return await s.getSetting(key);
  } finally {
    await s.close();
  }
}
