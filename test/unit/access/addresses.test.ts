import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AppError } from '../../../src/lib/errors.js';
import { holdingRange, intToIpv4, ipv4ToInt } from '../../../src/lib/cidr.js';
import type { AppContext } from '../../../src/services/context.js';
import { addressPool } from '../../../src/services/addresses.js';
import { SqliteStore } from '../../../src/store/index.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

const run = promisify(execFile);
const WORKER = fileURLToPath(new URL('../../helpers/address-worker.js', import.meta.url));
const DAY = 86_400_000;

describe('access: stable tunnel addresses', function () {
  this.timeout(60_000);
  let t: ReturnType<typeof tempDir>;
  let ctx: AppContext;
  let clock: Date;
  const open = async (subnet: string) => {
    ctx = await testContext(
      t.dir,
      { 'vpn.clientSubnet': subnet, 'vpn.renewGraceDays': 7 },
      { now: () => clock },
    );
    await ctx.users.create({ actor: 'test', name: 'dev', role: 'user' });
  };
  const issue = (cn: string) => ctx.devices.issue({ actor: 'test', owner: 'dev', commonName: cn });

  beforeEach(() => {
    t = tempDir();
    clock = new Date('2026-06-01T00:00:00Z');
  });
  afterEach(async () => {
    await ctx?.close();
    t.cleanup();
  });

  it('the pool skips the network address, the server (first host) and the broadcast', () => {
    const pool = addressPool('10.140.0.0/29');
    assert.deepEqual([intToIpv4(pool.first), intToIpv4(pool.last)], ['10.140.0.2', '10.140.0.6']);
    assert.equal(pool.subnet, '10.140.0.0/29');
    const tiny = addressPool('10.140.0.0/30');
    assert.equal(tiny.first, tiny.last, 'a /30 has one client address');
    assert.throws(() => addressPool('10.140.0.0/31'), /has no address for a client/);
  });

  it("the pool leaves out the holding range at the top (openvpn's pool for devices without a client-config-dir file)", () => {
    const big = addressPool('10.140.0.0/16');
    assert.equal(intToIpv4(big.last), '10.140.254.255', 'the last /24 is held back');
    assert.deepEqual(holdingRange('10.140.0.0/16'), {
      first: big.last + 1,
      last: ipv4ToInt('10.140.255.254'),
    });
    const c = addressPool('10.140.0.0/24');
    assert.equal(intToIpv4(c.last), '10.140.0.223', 'the top eighth of a /24 is held back');
    assert.equal(intToIpv4(holdingRange('10.140.0.0/24')!.first), '10.140.0.224');
    assert.equal(holdingRange('10.140.0.0/28'), undefined, 'a /28 spares none');
    assert.equal(intToIpv4(addressPool('10.140.0.0/28').last), '10.140.0.14');
  });

  it('allocates at issue, in order from the second host, one per device', async () => {
    await open('10.140.0.0/29');
    await issue('dev.a');
    await issue('dev.b');
    assert.equal((await ctx.addresses.get('dev.a'))?.address, '10.140.0.2');
    assert.equal((await ctx.addresses.get('dev.b'))?.address, '10.140.0.3');
    const audit = await ctx.store.listAudit({ action: 'cert.issue' });
    assert.equal(audit[0]!.details.address, '10.140.0.3');
  });

  it('409 when the subnet is exhausted, naming it; nothing is issued or recorded', async () => {
    await open('10.140.0.0/29');
    for (const n of ['a', 'b', 'c', 'd', 'e']) await issue(`dev.${n}`);
    const before = (await ctx.store.listCerts()).total;
    const audits = (await ctx.store.listAudit({ action: 'cert.issue' })).length;
    await assert.rejects(issue('dev.f'), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.status, 409);
      assert.equal(err.field, 'vpn.clientSubnet');
      assert.match(err.message, /10\.140\.0\.0\/29/);
      return true;
    });
    assert.equal((await ctx.store.listCerts()).total, before);
    assert.equal((await ctx.store.listAudit({ action: 'cert.issue' })).length, audits);
    assert.equal(await ctx.addresses.get('dev.f'), undefined);
  });

  it('two concurrent issues for the last address: one gets it, the other a 409 and no certificate', async () => {
    await open('10.140.0.0/29');
    for (const n of ['a', 'b', 'c', 'd']) await issue(`dev.${n}`);
    const results = await Promise.allSettled([issue('dev.x'), issue('dev.y')]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((failed.reason as AppError).status, 409);
    const addresses = (await ctx.addresses.list()).map((a) => a.address);
    assert.equal(new Set(addresses).size, addresses.length);
    assert.equal(
      (await ctx.store.listCerts({ status: 'valid' })).items.filter((c) => c.kind === 'client').length,
      5,
    );
  });

  it('never gives one address to two devices when two processes allocate on the same file at once', async () => {
    const file = join(t.dir, 'shared.db');
    await SqliteStore.open(file).close();
    const [a, b] = await Promise.all(
      ['p', 'q'].map((tag) => run(process.execPath, [WORKER, file, tag, '150', '10.140.0.0/24'])),
    );
    const lines = [...a!.stdout.trim().split('\n'), ...b!.stdout.trim().split('\n')];
    const given = lines.filter((l) => !l.startsWith('409')).map((l) => l.split(' ')[1]!);
    const refused = lines.filter((l) => l.startsWith('409'));
    // .2 to .223: the top eighth of the /24 is the holding range
    assert.equal(given.length, 222, 'every usable address of the /24 is given out');
    assert.equal(new Set(given).size, given.length, 'no address twice');
    assert.equal(refused.length, 300 - 222);
    assert.match(refused[0]!, /10\.140\.0\.0\/24/);
    const store = SqliteStore.open(file);
    assert.equal((await store.listAddresses()).length, 222);
    await store.close();
  });

  it('a renewal keeps the address; so does a restart', async () => {
    await open('10.140.0.0/24');
    await issue('dev.a');
    const { cert } = await issue('dev.b');
    const before = (await ctx.addresses.get('dev.b'))!.address;
    await ctx.renewal.renew({ actor: 'test', serial: cert.serial });
    assert.equal((await ctx.addresses.get('dev.b'))!.address, before);
    await ctx.close();
    ctx = await testContext(t.dir, { 'vpn.clientSubnet': '10.140.0.0/24' }, { now: () => clock });
    assert.equal((await ctx.addresses.get('dev.b'))!.address, before);
    assert.deepEqual(
      (await ctx.access.bundle()).clients.find((c) => c.commonName === 'dev.b')?.address,
      before,
    );
  });

  it('frees the address only after the grace period without a valid certificate, then reuses it', async () => {
    await open('10.140.0.0/29');
    await issue('dev.a');
    await ctx.revocation.revoke({ actor: 'test', serialOrName: 'dev.a' });
    clock = new Date(clock.getTime() + 7 * DAY - 60_000);
    assert.deepEqual(await ctx.addresses.sweep(), [], 'within the grace period');
    assert.equal((await ctx.addresses.get('dev.a'))?.address, '10.140.0.2');
    clock = new Date(clock.getTime() + 120_000);
    assert.deepEqual(await ctx.addresses.sweep(), ['dev.a']);
    assert.equal(await ctx.addresses.get('dev.a'), undefined);
    assert.equal((await ctx.store.listAudit({ action: 'address.release' }))[0]!.target, 'dev.a');
    await issue('dev.b');
    assert.equal((await ctx.addresses.get('dev.b'))?.address, '10.140.0.2');
  });

  it('a device revoked and issued again within the grace period keeps its address', async () => {
    await open('10.140.0.0/29');
    await issue('dev.a');
    await issue('dev.b');
    await ctx.revocation.revoke({ actor: 'test', serialOrName: 'dev.a' });
    clock = new Date(clock.getTime() + DAY);
    await issue('dev.a');
    clock = new Date(clock.getTime() + 30 * DAY);
    assert.deepEqual(await ctx.addresses.sweep(), []);
    assert.equal((await ctx.addresses.get('dev.a'))?.address, '10.140.0.2');
  });

  it('an expired device is freed a grace period after its expiry', async () => {
    await open('10.140.0.0/29');
    const { cert } = await issue('dev.a');
    clock = new Date(cert.notAfter.getTime() + 7 * DAY + 1000);
    assert.deepEqual(await ctx.addresses.sweep(), ['dev.a']);
  });
});
