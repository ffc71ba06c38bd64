import assert from 'node:assert/strict';
import { verifyCrl, type CertificateAuthority } from '../../../src/pki/index.js';
import { DeviceService } from '../../../src/services/devices.js';
import { ServerIdentityService } from '../../../src/services/server-identity.js';
import { resolveKeySecret } from '../../../src/services/key-secret.js';
import type { AppContext } from '../../../src/services/context.js';
import { fixedCaSet } from '../../../src/services/ca-set.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

/** A promise opened by the test: lets it decide when a step in the middle of a service call goes on. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/**
 * The real CA, except that `issue` first waits for the gate and counts its callers. Signing itself is the
 * real thing; only the moment at which it returns is chosen by the test.
 */
function gatedCa(ca: CertificateAuthority, g: { wait: Promise<void> }, entered: { n: number }) {
  return {
    certPem: ca.certPem,
    issue: async (r: Parameters<CertificateAuthority['issue']>[0]) => {
      entered.n++;
      await g.wait;
      return ca.issue(r);
    },
  } as unknown as CertificateAuthority;
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition not reached');
}

describe('services: races around disable, limits and the server identity', function () {
  this.timeout(120_000);
  let t: ReturnType<typeof tempDir>;
  let ctx: AppContext;
  beforeEach(async () => {
    t = tempDir();
    ctx = await testContext(t.dir);
  });
  afterEach(async () => {
    await ctx.close();
    t.cleanup();
  });

  it('issues in flight while a user is disabled are not recorded: no valid certificate after disable returns', async () => {
    await ctx.users.create({ actor: 'test', name: 'dev', role: 'user' });
    await ctx.devices.issue({ actor: 'test', owner: 'dev', commonName: 'dev.before' });
    const g = gate();
    const entered = { n: 0 };
    const devices = new DeviceService({
      store: ctx.store,
      cas: fixedCaSet(gatedCa(ctx.ca, g, entered)),
      config: ctx.config,
      server: ctx.server,
      now: ctx.now,
    });
    const inflight = Array.from({ length: 6 }, (_, i) =>
      devices.issue({ actor: 'dev', owner: 'dev', commonName: `dev.race${i}`, selfService: true }).then(
        (r) => ({ ok: true as const, serial: r.cert.serial }),
        (e: Error) => ({ ok: false as const, message: e.message }),
      ),
    );
    // At least one is past the pre-check and inside key generation when the disable runs.
    await until(() => entered.n >= 1);
    const { revoked } = await ctx.users.disable({ actor: 'admin', name: 'dev' });
    assert.equal(revoked.length, 1, 'the certificate that existed is revoked');
    const validAfterDisable = async () => (await ctx.store.listCerts({ ownerId: 1, status: 'valid' })).total;
    g.open();
    const results = await Promise.all(inflight);
    assert.equal(await validAfterDisable(), 0, JSON.stringify(results));
    for (const r of results) {
      assert.equal(r.ok, false);
      assert.match(r.message, /owner: user 'dev' is disabled/);
    }
    // Nothing recorded means nothing the CRL would have to name: every row of dev's is in the CRL.
    const crl = verifyCrl((await ctx.revocation.currentCrl())!.pem, ctx.ca.certPem);
    const rows = (await ctx.store.listCerts({ ownerId: 1 })).items;
    assert.deepEqual(rows.map((c) => c.serial).sort(), [...crl.revokedSerials].sort());
  });

  it('device maximum holds for parallel self-service issues (valid + in flight), the CLI is not limited', async () => {
    // A longer key-generation queue, so that only the device maximum refuses here.
    await ctx.close();
    ctx = await testContext(t.dir, { 'devices.keygenQueue': 50 });
    await ctx.users.create({ actor: 'test', name: 'dev', role: 'user' });
    const max = ctx.config.devices.maxValidPerUser;
    assert.equal(max, 10);
    const results = await Promise.allSettled(
      Array.from({ length: 14 }, (_, i) =>
        ctx.devices.issue({ actor: 'dev', owner: 'dev', commonName: `dev.d${i}`, selfService: true }),
      ),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    assert.equal(ok, 10);
    for (const r of results.filter((x) => x.status === 'rejected')) {
      assert.equal((r.reason as { status: number }).status, 409);
      assert.match((r.reason as Error).message, /already has 10 valid devices/);
    }
    assert.equal(await ctx.devices.validDevices(1), 10);
    // An administrator (CLI) can still issue; then self-service stays refused until one is revoked.
    await ctx.devices.issue({ actor: 'cli', owner: 'dev', commonName: 'dev.admin-made' });
    await assert.rejects(
      ctx.devices.issue({ actor: 'dev', owner: 'dev', commonName: 'dev.more', selfService: true }),
      /already has 10 valid devices/,
    );
  });

  it('per-user rate: the 21st self-service issue in an hour is 429, counted when requests arrive', async () => {
    await ctx.users.create({ actor: 'test', name: 'dev', role: 'user' });
    await ctx.users.create({ actor: 'test', name: 'other', role: 'user' });
    const results: number[] = [];
    for (let round = 0; round < 3; round++) {
      const batch = await Promise.allSettled(
        Array.from({ length: 7 }, (_, i) =>
          ctx.devices.issue({
            actor: 'dev',
            owner: 'dev',
            commonName: `dev.r${round}-${i}`,
            selfService: true,
          }),
        ),
      );
      results.push(
        ...batch.map((r) => (r.status === 'fulfilled' ? 201 : (r.reason as { status: number }).status)),
      );
      // Revoke to stay under the device maximum: only the rate limit is under test here.
      for (const c of (await ctx.store.listCerts({ ownerId: 1, status: 'valid' })).items) {
        await ctx.revocation.revoke({ actor: 'dev', serialOrName: c.serial });
      }
    }
    assert.equal(results.filter((s) => s === 201).length, 20, results.join(','));
    assert.deepEqual(
      results.filter((s) => s !== 201),
      [429],
    );
    // Another user is not affected.
    await ctx.devices.issue({ actor: 'other', owner: 'other', commonName: 'other.x', selfService: true });
  });

  it('key-generation queue: self-service beyond the queue gets 503 and records nothing; CLI callers wait', async () => {
    for (const name of ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8', 'u9', 'u10']) {
      await ctx.users.create({ actor: 'test', name, role: 'user' });
    }
    const g = gate();
    const entered = { n: 0 };
    const devices = new DeviceService({
      store: ctx.store,
      cas: fixedCaSet(gatedCa(ctx.ca, g, entered)),
      config: ctx.config,
      server: ctx.server,
      now: ctx.now,
    });
    await ctx.server.ensure();
    const issue = (owner: string, selfService: boolean) =>
      devices
        .issue({ actor: owner, owner, commonName: `${owner}.q${selfService ? 's' : 'c'}`, selfService })
        .then(
          () => 201,
          (e: { status: number }) => e.status,
        );
    // 1 running + 8 waiting (ten users, so neither per-user limit is what refuses).
    const first = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8', 'u9'].map((u) => issue(u, true));
    await until(() => devices.limits.load().waiting === 8);
    assert.equal(await issue('u10', true), 503);
    await assert.rejects(
      devices.issue({ actor: 'u9', owner: 'u9', commonName: 'u9.again', selfService: true }),
      (e: { status: number; retryAfterSeconds?: number }) => e.status === 503 && e.retryAfterSeconds === 60,
      'the 503 says when to come back (Retry-After)',
    );
    const cli = issue('u10', false);
    await until(() => devices.limits.load().waiting === 9);
    g.open();
    assert.deepEqual(await Promise.all([...first, cli]), Array(10).fill(201));
    assert.equal((await ctx.store.listCerts({ kind: 'client' })).total, 10);
  });

  it("server identity: the process that loses the race does not revoke the winner's new certificate", async () => {
    await ctx.server.ensure(); // an identity for the old name exists
    // Two processes (two contexts on one data dir) renamed to a new server name renew at the same time.
    const a = await testContext(t.dir, { 'vpn.serverName': 'vpn-two' });
    const b = await testContext(t.dir, { 'vpn.serverName': 'vpn-two' });
    try {
      const g = gate();
      const entered = { n: 0 };
      const slowB = new ServerIdentityService({
        store: b.store,
        cas: fixedCaSet(gatedCa(b.ca, g, entered)),
        secret: resolveKeySecret(b.config, b.dataDir, false),
        serverName: 'vpn-two',
        revocation: b.revocation,
        now: b.now,
      });
      const late = slowB.ensure(); // read the old identity, now making its certificate
      await until(() => entered.n === 1);
      const won = await a.server.ensure(); // the other process finishes first
      g.open();
      const lost = await late;
      assert.equal(lost.serial, won.serial, "the loser uses the winner's identity");
      const cert = (await a.store.getCert(won.serial))!;
      assert.equal(cert!.status, 'valid');
      const crl = verifyCrl((await a.revocation.currentCrl())!.pem, a.ca.certPem);
      assert.ok(!crl.revokedSerials.includes(won.serial), "the winner's certificate is not in the CRL");
      assert.equal((await a.store.getValidCertByCommonName('vpn-two'))!.serial, won.serial);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
