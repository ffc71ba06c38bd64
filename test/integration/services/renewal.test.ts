import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyCrl } from '../../../src/pki/index.js';
import { runCli, tempDir, profileBlock } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

const DAY = 86_400_000;

describe('services: device renewal (same name, new certificate; the old one superseded after the grace)', function () {
  this.timeout(120_000);

  it('renews, keeps the old certificate valid during the grace, then revokes it as superseded', async () => {
    const t = tempDir();
    let now = new Date();
    const t0 = now.getTime();
    const ctx = await testContext(t.dir, { 'vpn.renewGraceDays': 3 }, { now: () => now });
    try {
      await ctx.users.create({ actor: 'test', name: 'alice', role: 'user' });
      const first = await ctx.devices.issue({
        actor: 'alice',
        owner: 'alice',
        commonName: 'alice.laptop',
        deviceName: 'laptop',
        keyType: 'rsa-2048',
      });
      now = new Date(t0 + DAY);
      const crlBefore = (await ctx.revocation.currentCrl())!.number;
      const { cert, profile, replaced } = await ctx.renewal.renew({
        actor: 'alice',
        serial: first.cert.serial,
      });

      assert.notEqual(cert.serial, first.cert.serial);
      assert.equal(cert.commonName, 'alice.laptop');
      assert.equal(cert.deviceName, 'laptop');
      assert.equal(cert.keyType, 'rsa-2048', 'the old key type is kept');
      assert.ok(cert.notAfter.getTime() > first.cert.notAfter.getTime());
      const x = new X509Certificate(profileBlock(profile, 'cert'));
      assert.equal(x.serialNumber.toUpperCase(), cert.serial);
      assert.ok(x.verify(new X509Certificate(ctx.ca.certPem).publicKey));
      // The old one is still valid (the device keeps working) but no longer current.
      assert.equal(replaced.status, 'valid');
      assert.equal(replaced.supersededBy, cert.serial);
      assert.equal(replaced.supersedeAt?.getTime(), t0 + DAY + 3 * DAY);
      assert.equal((await ctx.store.getValidCertByCommonName('alice.laptop'))?.serial, cert.serial);
      assert.equal((await ctx.revocation.currentCrl())!.number, crlBefore, 'nothing revoked yet');
      const audit = await ctx.store.listAudit({ action: 'cert.renew' });
      assert.equal(audit.length, 1);
      assert.equal(audit[0]!.details.renews, first.cert.serial);

      // Refusals change nothing.
      const rows = (await ctx.store.listCerts({})).total;
      await assert.rejects(
        ctx.renewal.renew({ actor: 'alice', serial: first.cert.serial }),
        /already renewed/,
      );
      await assert.rejects(ctx.renewal.renew({ actor: 'alice', serial: 'ABCD' }), /no certificate/);
      const server = (await ctx.store.listCerts({ kind: 'server' })).items[0]!;
      await assert.rejects(ctx.renewal.renew({ actor: 'alice', serial: server.serial }), /renews itself/);
      assert.equal((await ctx.store.listCerts({})).total, rows);

      // Grace not over: the periodic check leaves it alone.
      now = new Date(t0 + 3.5 * DAY);
      await ctx.revocation.ensureFreshCrl();
      assert.equal((await ctx.store.getCert(first.cert.serial))?.status, 'valid');
      // Grace over: revoked as superseded, in the CRL, and the bundle tells the agent the name was re-issued.
      now = new Date(t0 + 4 * DAY + 60_000);
      const crl = await ctx.revocation.ensureFreshCrl();
      const old = (await ctx.store.getCert(first.cert.serial))!;
      assert.equal(old!.status, 'revoked');
      assert.equal(old!.revocationReason, 'superseded');
      assert.deepEqual(verifyCrl(crl.pem, ctx.ca.certPem, now).revokedSerials, [first.cert.serial]);
      assert.equal((await ctx.store.getCert(cert.serial))?.status, 'valid');
      assert.deepEqual((await ctx.revocation.bundle()).reissuedCommonNames, ['alice.laptop']);
      // The renewed certificate can itself be renewed.
      const again = await ctx.renewal.renew({ actor: 'alice', serial: cert.serial });
      assert.equal((await ctx.store.getValidCertByCommonName('alice.laptop'))?.serial, again.cert.serial);
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });

  it('devices.maxValidPerUser never blocks a renewal; devices in their renewal grace do not count (issue 21, item 15)', async () => {
    const t = tempDir();
    const ctx = await testContext(t.dir, { 'vpn.renewGraceDays': 7, 'devices.maxValidPerUser': 2 });
    try {
      const user = await ctx.users.create({ actor: 'test', name: 'dora', role: 'user' });
      const self = { actor: 'dora', owner: 'dora', selfService: true } as const;
      const a = await ctx.devices.issue({ ...self, commonName: 'dora.laptop' });
      const b = await ctx.devices.issue({ ...self, commonName: 'dora.phone' });
      await assert.rejects(ctx.devices.issue({ ...self, commonName: 'dora.tablet' }), /maxValidPerUser/);
      // At the maximum, both devices renew (self-service, as the web app and the API do it).
      const ra = await ctx.renewal.renew({ actor: 'dora', serial: a.cert.serial, selfService: true });
      const rb = await ctx.renewal.renew({ actor: 'dora', serial: b.cert.serial, selfService: true });
      assert.equal(ra.replaced.status, 'valid', 'the old one stays valid during the grace');
      assert.equal(rb.replaced.status, 'valid');
      // Four valid certificates, two devices: the two in their grace are not counted.
      assert.equal(
        (await ctx.store.listCerts({ ownerId: user.id, kind: 'client', status: 'valid' })).total,
        4,
      );
      assert.equal(await ctx.devices.validDevices(user.id), 2);
      await assert.rejects(ctx.devices.issue({ ...self, commonName: 'dora.tablet' }), /maxValidPerUser/);
      // Revoking one device frees a place even while the other's old certificate is in its grace.
      await ctx.revocation.revoke({ actor: 'dora', serialOrName: ra.cert.serial });
      await ctx.devices.issue({ ...self, commonName: 'dora.tablet' });
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });

  it('with renewGraceDays 0, or for an expired certificate, the old one is revoked at once', async () => {
    const t = tempDir();
    let now = new Date();
    const ctx = await testContext(t.dir, { 'vpn.renewGraceDays': 0, 'vpn.certDays': 2 }, { now: () => now });
    try {
      await ctx.users.create({ actor: 'test', name: 'bob', role: 'user' });
      const a = await ctx.devices.issue({ actor: 'bob', owner: 'bob', commonName: 'bob.phone' });
      const r = await ctx.renewal.renew({ actor: 'bob', serial: a.cert.serial });
      assert.equal(r.replaced.status, 'revoked');
      assert.equal(r.replaced.revocationReason, 'superseded');
      assert.ok(
        verifyCrl((await ctx.revocation.currentCrl())!.pem, ctx.ca.certPem, now).revokedSerials.includes(
          a.cert.serial,
        ),
      );
      // Expired (2-day certificate, 3 days later): renewing it revokes it at once whatever the grace.
      now = new Date(now.getTime() + 3 * DAY);
      const e = await ctx.renewal.renew({ actor: 'bob', serial: r.cert.serial });
      assert.equal(e.replaced.status, 'revoked');
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });

  it('a device issued from a CSR renews only with a new CSR: service and CLI (issue 21, item 16)', async () => {
    const t = tempDir();
    const dataDir = join(t.dir, 'data');
    const env = {
      PODGATE_VPN_ENDPOINTS: '172.18.12.21',
      PODGATE_DATA_DIR: dataDir,
      PODGATE_CA_KEY_TYPE: 'ec-p384',
    };
    const csr = (name: string) => {
      execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(t.dir, `${name}.key`), '-subj', '/CN=x', '-out', join(t.dir, `${name}.csr`)], { stdio: 'ignore' }); // prettier-ignore
      return join(t.dir, `${name}.csr`);
    };
    try {
      writeFileSync(join(t.dir, 'pw'), 'correct horse battery staple\n');
      assert.equal(
        (await runCli(['init'], { ...env, PODGATE_ADMIN_PASSWORD_FILE: join(t.dir, 'pw') })).code,
        0,
      );
      assert.equal((await runCli(['user', 'add', 'hal'], env)).code, 0);
      let r = await runCli(['cert', 'issue', 'hal-pi', '--owner', 'hal', '--csr', csr('a'), '--out', join(t.dir, 'a.ovpn')], env); // prettier-ignore
      assert.equal(r.code, 0, r.stderr);
      // No CSR: exit 2 naming --csr, nothing issued.
      r = await runCli(['cert', 'renew', 'hal-pi', '--out', join(t.dir, 'b.ovpn')], env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--csr: hal-pi was issued from a certificate request/);
      assert.equal(existsSync(join(t.dir, 'b.ovpn')), false);
      // The service says the same to the web app and the API (field csr).
      const ctx = await testContext(t.dir, { dataDir });
      try {
        const old = (await ctx.store.getValidCertByCommonName('hal-pi'))!;
        assert.equal(old!.keyFromCsr, true);
        const rows = (await ctx.store.listCerts({})).total;
        await assert.rejects(
          ctx.renewal.renew({ actor: 'hal', serial: old!.serial, selfService: true }),
          (e: Error & { field?: string }) =>
            e.field === 'csr' && /needs a new certificate request/.test(e.message),
        );
        assert.equal((await ctx.store.listCerts({})).total, rows, 'nothing issued');
      } finally {
        await ctx.close();
      }
      r = await runCli(['cert', 'renew', 'hal-pi', '--csr', csr('b'), '--out', join(t.dir, 'b.ovpn')], env);
      assert.equal(r.code, 0, r.stderr);
      const profile = readFileSync(join(t.dir, 'b.ovpn'), 'utf8');
      assert.doesNotMatch(profile, /<key>/, 'no key made by the server');
      const cert = new X509Certificate(profileBlock(profile, 'cert'));
      const key = execFileSync('openssl', ['pkey', '-pubout', '-in', join(t.dir, 'b.key')], {
        encoding: 'utf8',
      });
      assert.equal(cert.publicKey.export({ type: 'spki', format: 'pem' }), key);
    } finally {
      t.cleanup();
    }
  });

  it('CLI: cert list --expiring 30d lists the certificates due, cert renew writes the new profile', async () => {
    const t = tempDir();
    const dataDir = join(t.dir, 'data');
    const env = { PODGATE_VPN_ENDPOINTS: '172.18.12.21', PODGATE_DATA_DIR: dataDir };
    const cli = (...args: string[]) => runCli(args, env);
    try {
      writeFileSync(join(t.dir, 'pw'), 'correct horse battery staple\n');
      assert.equal(
        (await runCli(['init'], { ...env, PODGATE_ADMIN_PASSWORD_FILE: join(t.dir, 'pw') })).code,
        0,
      );
      assert.equal((await cli('user', 'add', 'carol')).code, 0);
      const shortEnv = { ...env, PODGATE_VPN_CERT_DAYS: '20' };
      const out1 = join(t.dir, 'short.ovpn');
      let r = await runCli(['cert', 'issue', 'carol-short', '--owner', 'carol', '--out', out1], shortEnv);
      assert.equal(r.code, 0, r.stderr);
      r = await cli('cert', 'issue', 'carol-long', '--owner', 'carol', '--out', join(t.dir, 'long.ovpn'));
      assert.equal(r.code, 0, r.stderr);

      r = await cli('cert', 'list', '--expiring', '30d', '--json');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        (JSON.parse(r.stdout) as { commonName: string }[]).map((c) => c.commonName),
        ['carol-short'],
      );
      r = await cli('cert', 'list', '--expiring', 'soon');
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--expiring must be a number of days/);

      const out2 = join(t.dir, 'renewed.ovpn');
      r = await cli('cert', 'renew', 'carol-short', '--out', out2);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /renewed carol-short: new serial [0-9A-F]+ .*revoked as superseded on /);
      const newSerial = new X509Certificate(profileBlock(readFileSync(out2, 'utf8'), 'cert')).serialNumber;
      r = await cli('cert', 'list', '--json');
      const list = JSON.parse(r.stdout) as {
        serial: string;
        commonName: string;
        supersededBy: string | null;
      }[];
      const short = list.filter((c) => c.commonName === 'carol-short');
      assert.equal(short.length, 2);
      assert.equal(
        short.find((c) => c.serial !== newSerial.toUpperCase())?.supersededBy,
        newSerial.toUpperCase(),
      );
      // Renewing the old one again, or writing over an existing file: exit 2, nothing issued.
      r = await cli(
        'cert',
        'renew',
        short.find((c) => c.supersededBy)!.serial,
        '--out',
        join(t.dir, 'x.ovpn'),
      );
      assert.equal(r.code, 2, r.stderr);
      r = await cli('cert', 'renew', 'carol-long', '--out', out2);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /already exists/);
      r = await cli('cert', 'list', '--json');
      assert.equal((JSON.parse(r.stdout) as unknown[]).length, list.length);
    } finally {
      t.cleanup();
    }
  });
});
