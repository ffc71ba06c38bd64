import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../../src/lib/exec.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { CRL_KEEP_AFTER_EXPIRY_MS } from '../../../src/services/revocation.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** What openssl itself reads from the CRL: serials listed and the CRL number. */
async function opensslCrl(dir: string, crlPem: string, caPem: string): Promise<string> {
  const crlFile = join(dir, 'crl.pem');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(crlFile, crlPem);
  writeFileSync(caFile, caPem);
  const r = await exec(['openssl', 'crl', '-in', crlFile, '-CAfile', caFile, '-verify', '-noout', '-text'], {
    check: false,
  });
  assert.match(r.stderr + r.stdout, /verify OK/);
  return r.stdout;
}

describe('services: CRL hygiene (expired certificates leave the CRL; the CRL never expires)', function () {
  this.timeout(60_000);

  it('a revoked certificate leaves the CRL a day after it expired; a revoked unexpired one stays', async () => {
    const t = tempDir();
    let now = new Date();
    const t0 = now.getTime();
    const ctx = await testContext(t.dir, { 'vpn.certDays': 1 }, { now: () => now });
    try {
      await ctx.users.create({ actor: 'test', name: 'alice', role: 'user' });
      const a = await ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: 'alice-old' });
      await ctx.revocation.revoke({ actor: 'test', serialOrName: 'alice-old', reason: 'keyCompromise' });
      now = new Date(t0 + 1.5 * DAY);
      const b = await ctx.devices.issue({ actor: 'test', owner: 'alice', commonName: 'alice-new' });
      await ctx.revocation.revoke({ actor: 'test', serialOrName: 'alice-new', reason: 'keyCompromise' });
      // a expired at t0+1d; at t0+1.5d it is still inside the margin, so both are listed.
      let info = verifyCrl((await ctx.revocation.currentCrl())!.pem, ctx.ca.certPem, now);
      assert.deepEqual(new Set(info.revokedSerials), new Set([a.cert.serial, b.cert.serial]));

      // The daily re-sign prunes: at t0+2.6d a (expired 1.6 days ago) goes, b (expired 2.4 h ago) stays.
      now = new Date(t0 + 2.6 * DAY);
      assert.ok(now.getTime() > a.cert.notAfter.getTime() + CRL_KEEP_AFTER_EXPIRY_MS);
      assert.ok(now.getTime() > b.cert.notAfter.getTime());
      const before = (await ctx.revocation.currentCrl())!.number;
      const crl = await ctx.revocation.ensureFreshCrl(); // older than a day: re-signed, and pruned
      assert.equal(crl.number, before + 1);
      info = verifyCrl(crl.pem, ctx.ca.certPem, now);
      assert.deepEqual(info.revokedSerials, [b.cert.serial]);
      const text = await opensslCrl(t.dir, crl.pem, ctx.ca.certPem);
      assert.ok(text.includes(`Serial Number: ${b.cert.serial}`), text);
      assert.ok(!text.includes(`Serial Number: ${a.cert.serial}`), text);
      // The row itself stays revoked: the history is kept, only the CRL forgets it.
      assert.equal((await ctx.store.getCert(a.cert.serial))?.status, 'revoked');

      now = new Date(t0 + 3.7 * DAY);
      assert.ok(now.getTime() > b.cert.notAfter.getTime() + CRL_KEEP_AFTER_EXPIRY_MS);
      const empty = await ctx.revocation.ensureFreshCrl();
      assert.deepEqual(verifyCrl(empty.pem, ctx.ca.certPem, now).revokedSerials, []);
      assert.match(await opensslCrl(t.dir, empty.pem, ctx.ca.certPem), /No Revoked Certificates/);
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });

  it('the CRL is re-signed daily and long before nextUpdate, never allowed to expire', async () => {
    const t = tempDir();
    let now = new Date();
    const ctx = await testContext(t.dir, { 'vpn.crlDays': 8 }, { now: () => now });
    try {
      const first = await ctx.revocation.ensureFreshCrl();
      now = new Date(now.getTime() + 12 * HOUR);
      assert.equal((await ctx.revocation.ensureFreshCrl()).number, first.number, 'fresh: not re-signed');
      let last = first;
      // Thirty days of hourly checks: each day a new CRL, and it is always valid at that moment.
      for (let h = 0; h < 30 * 24; h++) {
        now = new Date(now.getTime() + HOUR);
        const crl = await ctx.revocation.ensureFreshCrl();
        verifyCrl(crl.pem, ctx.ca.certPem, now); // throws when expired or not yet valid
        assert.ok(crl.nextUpdate.getTime() - now.getTime() >= 7 * DAY - HOUR, 'a week of margin at least');
        assert.ok(now.getTime() - crl.thisUpdate.getTime() <= DAY + HOUR, 'at most a day old');
        if (crl.number !== last.number) assert.equal(crl.number, last.number + 1);
        last = crl;
      }
      assert.ok(last.number >= first.number + 29, `re-signed daily (${last.number - first.number} times)`);
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });
  it('vpn.crlRefreshSeconds: re-signed once that long has passed since signing, not before', async () => {
    const t = tempDir();
    let now = new Date();
    const ctx = await testContext(t.dir, { 'vpn.crlRefreshSeconds': 60 }, { now: () => now });
    try {
      const first = await ctx.revocation.resign('test');
      now = new Date(now.getTime() + 59_000);
      assert.equal((await ctx.revocation.ensureFreshCrl()).number, first.number, '59 s: not re-signed');
      now = new Date(now.getTime() + 2_000);
      assert.equal((await ctx.revocation.ensureFreshCrl()).number, first.number + 1, '61 s: re-signed');
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });
  it('a CRL signed while the clock ran ahead is re-signed at the next check once the clock is set back', async () => {
    const t = tempDir();
    const t0 = Date.now();
    let now = new Date(t0);
    const ctx = await testContext(t.dir, {}, { now: () => now });
    try {
      now = new Date(t0 + 1.5 * DAY); // the host clock jumps ahead; the daily re-sign runs on it
      const ahead = await ctx.revocation.ensureFreshCrl();
      now = new Date(t0 + HOUR); // time sync sets it right: that CRL's thisUpdate is in the future
      assert.throws(() => verifyCrl(ahead.pem, ctx.ca.certPem, now), /in the future/);
      const crl = await ctx.revocation.ensureFreshCrl();
      assert.equal(crl.number, ahead.number + 1);
      verifyCrl(crl.pem, ctx.ca.certPem, now); // what the agent checks before openvpn reads it
      assert.equal((await ctx.revocation.currentCrl())!.number, crl.number);
    } finally {
      await ctx.close();
      t.cleanup();
    }
  });
});
