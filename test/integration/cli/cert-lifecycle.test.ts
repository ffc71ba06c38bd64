import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { exec } from '../../../src/lib/exec.js';
import { runCli, tempDir, profileBlock } from '../../helpers/cli.js';

describe('CLI: issue, revoke and publish a CRL that openssl accepts', function () {
  this.timeout(120_000);
  const t = tempDir();
  const dataDir = join(t.dir, 'data');
  const env = { PODGATE_VPN_ENDPOINTS: '172.18.12.21,172.18.12.22', PODGATE_DATA_DIR: dataDir };
  const cli = (...args: string[]) => runCli(args, env);
  const issued: Record<string, string> = {}; // name -> profile path

  before(async () => {
    const pw = join(t.dir, 'admin.pw');
    writeFileSync(pw, 'correct horse battery staple\n');
    const init = await runCli(['init'], { ...env, PODGATE_ADMIN_PASSWORD_FILE: pw });
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /first admin: admin/);
    assert.doesNotMatch(init.stdout, /correct horse/);
    const add = await cli('user', 'add', 'alice');
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /password \(shown once\): \S{10,}/);
  });
  after(() => t.cleanup());

  for (const keyType of ['ec-p256', 'rsa-2048', 'rsa-3072']) {
    it(`issues a ${keyType} profile whose certificate openssl verifies and whose key matches`, async () => {
      const name = `alice-${keyType}`;
      const out = join(t.dir, `${name}.ovpn`);
      const r = await cli('cert', 'issue', name, '--owner', 'alice', '--key-type', keyType, '--out', out);
      assert.equal(r.code, 0, r.stderr);
      issued[name] = out;
      const profile = readFileSync(out, 'utf8');
      assert.equal((await import('node:fs')).statSync(out).mode & 0o777, 0o600);
      assert.match(profile, /^remote 172\.18\.12\.21 30030 udp$/m);
      assert.match(profile, /^remote 172\.18\.12\.22 30030 udp$/m);
      assert.match(profile, /^verify-x509-name podgate-server name$/m);
      assert.match(profile, /^remote-cert-tls server$/m);
      assert.doesNotMatch(profile, /comp-lzo|compress/);
      const certFile = join(t.dir, `${name}.crt`);
      writeFileSync(certFile, profileBlock(profile, 'cert'));
      const v = await exec([
        'openssl',
        'verify',
        '-x509_strict',
        '-purpose',
        'sslclient',
        '-CAfile',
        join(dataDir, 'ca.crt'),
        certFile,
      ]);
      assert.match(v.stdout, /: OK/);
      const x509 = new X509Certificate(profileBlock(profile, 'cert'));
      assert.equal(x509.subject, `CN=${name}`);
      const text = (await exec(['openssl', 'x509', '-in', certFile, '-noout', '-text'])).stdout;
      assert.match(text, /TLS Web Client Authentication/);
      assert.match(text, /Digital Signature/);
      assert.match(text, /X509v3 Subject Key Identifier/);
      assert.match(text, /X509v3 Authority Key Identifier/);
      const keyPub = createPublicKey(createPrivateKey(profileBlock(profile, 'key'))).export({
        type: 'spki',
        format: 'der',
      });
      assert.deepEqual(keyPub, x509.publicKey.export({ type: 'spki', format: 'der' }));
      assert.match(profile, /<tls-crypt-v2>\n-----BEGIN OpenVPN tls-crypt-v2 client key-----/);
    });
  }

  it('lists certificates as JSON with owner and status', async () => {
    const r = await cli('cert', 'list', '--json');
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as {
      commonName: string;
      owner: string;
      status: string;
      kind: string;
    }[];
    const clients = rows.filter((c) => c.kind === 'client');
    assert.deepEqual(clients.map((c) => c.commonName).sort(), Object.keys(issued).sort());
    assert.ok(clients.every((c) => c.owner === 'alice' && c.status === 'valid'));
  });

  it('revokes one: openssl says revoked for it and OK for the others; the CRL verifies', async () => {
    const r = await cli('cert', 'revoke', 'alice-rsa-2048', '--reason', 'keyCompromise');
    assert.equal(r.code, 0, r.stderr);
    const crlFile = join(t.dir, 'crl.pem');
    const c = await cli('crl', '--out', crlFile);
    assert.equal(c.code, 0, c.stderr);
    const caFile = join(dataDir, 'ca.crt');
    const crlCheck = await exec(['openssl', 'crl', '-in', crlFile, '-CAfile', caFile, '-verify', '-noout'], {
      check: false,
    });
    assert.match(crlCheck.stdout + crlCheck.stderr, /verify OK/);
    const crlText = (await exec(['openssl', 'crl', '-in', crlFile, '-noout', '-text'])).stdout;
    assert.match(crlText, /X509v3 CRL Number/);
    assert.match(crlText, /Key Compromise/);
    for (const [name, path] of Object.entries(issued)) {
      const certFile = join(t.dir, `${name}.crt`);
      writeFileSync(certFile, profileBlock(readFileSync(path, 'utf8'), 'cert'));
      const v = await exec(
        ['openssl', 'verify', '-crl_check', '-CAfile', caFile, '-CRLfile', crlFile, certFile],
        { check: false },
      );
      if (name === 'alice-rsa-2048') assert.match(v.stdout + v.stderr, /certificate revoked/);
      else assert.match(v.stdout, /: OK/, `${name}: ${v.stderr}`);
    }
  });

  it('the CA key file holds no plaintext key', () => {
    const text = readFileSync(join(dataDir, 'ca.key.enc'), 'utf8');
    assert.doesNotMatch(text, /PRIVATE KEY/);
    const envelope = JSON.parse(text) as { data: string };
    const data = Buffer.from(envelope.data, 'base64');
    // PKCS#8 DER starts with SEQUENCE (0x30 0x82): encrypted bytes must not.
    assert.ok(!(data[0] === 0x30 && data[1] === 0x82));
    assert.throws(() => createPrivateKey({ key: data, format: 'der', type: 'pkcs8' }));
  });

  describe('bad input: exit 2, the field named, nothing written', () => {
    const badNames: [string, string][] = [
      ['newline + script-security', 'x\nscript-security 2'],
      ['path traversal', '../x'],
      ['dot', '.'],
      ['dot dot', '..'],
      ['colon', 'a:b'],
      ['space', 'a b'],
      ['upper case', 'Alice'],
      ['65 characters', 'a'.repeat(65)],
      ['empty', ''],
    ];
    async function snapshot() {
      const list = await cli('cert', 'list', '--json');
      const audit = readdirSync(t.dir)
        .filter((f) => f.endsWith('.ovpn'))
        .sort();
      return { certs: list.stdout, files: audit };
    }
    for (const [label, name] of badNames) {
      it(`rejects a name with ${label}`, async () => {
        const before = await snapshot();
        const out = join(t.dir, `bad-${label.replace(/\W/g, '_')}.ovpn`);
        const r = await cli('cert', 'issue', name, '--owner', 'alice', '--out', out);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /commonName must match/);
        assert.equal(existsSync(out), false);
        assert.deepEqual(await snapshot(), before);
      });
    }
    it('rejects an unknown owner', async () => {
      const before = await snapshot();
      const out = join(t.dir, 'ghost.ovpn');
      const r = await cli('cert', 'issue', 'ghost-laptop', '--owner', 'ghost', '--out', out);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /owner: user 'ghost' does not exist/);
      assert.equal(existsSync(out), false);
      assert.deepEqual(await snapshot(), before);
    });
    it('rejects revoking an unknown certificate', async () => {
      const r = await cli('cert', 'revoke', 'nobody-here');
      assert.equal(r.code, 2);
      assert.match(r.stderr, /no valid certificate/);
    });
    it('rejects revoking an already revoked certificate by serial', async () => {
      const rows = JSON.parse((await cli('cert', 'list', '--json', '--status', 'revoked')).stdout) as {
        serial: string;
      }[];
      assert.equal(rows.length, 1);
      const before = await snapshot();
      const r = await cli('cert', 'revoke', rows[0]!.serial);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /already revoked/);
      assert.deepEqual(await snapshot(), before);
    });
    it('rejects a bad reason, naming the field', async () => {
      const r = await cli('cert', 'revoke', 'alice-ec-p256', '--reason', 'because');
      assert.equal(r.code, 2);
      assert.match(r.stderr, /reason must be one of/);
    });
    it('rejects a config with a bad CIDR, listing every bad key by path', async () => {
      const cfg = join(t.dir, 'bad.yaml');
      writeFileSync(
        cfg,
        'vpn:\n  clientSubnet: 10.140.0.0/33\n  routes:\n    pods: [10.244.0.1/16]\n  port: 0\n',
      );
      const r = await runCli(['cert', 'list', '--config', cfg], env);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /vpn\.clientSubnet/);
      assert.match(r.stderr, /vpn\.routes\.pods\.0: .*host bits set/);
      assert.match(r.stderr, /vpn\.port/);
    });
    it('rejects an existing --out file without touching it', async () => {
      const out = join(t.dir, 'exists.ovpn');
      writeFileSync(out, 'keep me');
      const before = await snapshot();
      const r = await cli('cert', 'issue', 'alice-new', '--owner', 'alice', '--out', out);
      assert.equal(r.code, 2);
      assert.equal(readFileSync(out, 'utf8'), 'keep me');
      assert.deepEqual(await snapshot(), before);
    });
    it('rejects unknown commands and missing options as bad usage', async () => {
      assert.equal((await cli('cert', 'issue', 'x')).code, 2);
      assert.equal((await cli('frobnicate')).code, 2);
    });
  });
});

describe('CLI: CA key protected by a passphrase file', function () {
  this.timeout(60_000);
  const t = tempDir();
  after(() => t.cleanup());

  it('works with the right passphrase and fails closed with a wrong one', async () => {
    const pass = join(t.dir, 'pass');
    writeFileSync(pass, 'a long and secret passphrase\n');
    const env = { PODGATE_DATA_DIR: join(t.dir, 'data'), PODGATE_CA_PASSPHRASE_FILE: pass };
    assert.equal((await runCli(['init'], env)).code, 0);
    assert.equal(
      existsSync(join(t.dir, 'data', 'ca-key.kek')),
      false,
      'no key file when a passphrase is given',
    );
    const ok = await runCli(['crl'], env);
    assert.equal(ok.code, 0, ok.stderr);
    writeFileSync(pass, 'the wrong passphrase\n');
    const crlBefore = readFileSync(join(t.dir, 'data', 'podgate.db'));
    const bad = await runCli(['user', 'add', 'bob'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /cannot decrypt the CA key: wrong passphrase or key file/);
    const list = await runCli(['user', 'list', '--json'], {
      ...env,
      PODGATE_CA_PASSPHRASE_FILE: join(t.dir, 'missing'),
    });
    assert.equal(list.code, 2);
    assert.match(list.stderr, /ca\.passphraseFile/);
    assert.deepEqual(readFileSync(join(t.dir, 'data', 'podgate.db')), crlBefore);
  });
});
