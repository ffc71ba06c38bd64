/**
 * The access bundle reads only what it uses of the certificates (store.listDeviceCerts: no PEM), on both
 * engines. The bundle (devices, addresses given to devices that had none, rules resolved to addresses)
 * must be exactly the one the full certificate list (listCerts, every column) gave before.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessClient, ResolvedRule } from '../../../src/access/types.js';
import { connectableDevices, resolveBundle } from '../../../src/services/access-subjects.js';
import type { AppContext } from '../../../src/services/context.js';
import type { CertRecord, NewCert } from '../../../src/store/types.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';
import { sharedPostgres } from '../../helpers/pg-store.js';

const DAY = 86_400_000;

async function open(engine: 'postgres' | 'sqlite', dir: string): Promise<AppContext> {
  if (engine === 'sqlite') return testContext(dir);
  const pg = await sharedPostgres();
  const database = await pg.createDatabase('leanbundle');
  writeFileSync(join(dir, 'ca-passphrase'), 'access-lean-bundle-passphrase\n', { mode: 0o600 });
  return testContext(dir, {
    'store.url': pg.url(database),
    'store.passwordFile': pg.passwordFile,
    'ca.passphraseFile': join(dir, 'ca-passphrase'),
  });
}

const RULES = {
  rules: [
    {
      name: 'dave',
      subjects: [{ kind: 'user', name: 'dave' }],
      destinations: [{ kind: 'cidr', cidr: '10.1.0.0/16' }],
    },
    {
      name: 'team-a',
      subjects: [{ kind: 'group', name: 'a' }],
      destinations: [{ kind: 'namespace', names: ['a'] }],
    },
    {
      name: 'office',
      subjects: [{ kind: 'gateway', name: 'office' }],
      destinations: [{ kind: 'namespace', names: ['a'] }],
    },
    {
      name: 'all',
      subjects: [{ kind: 'everyone' }],
      destinations: [{ kind: 'cidr', cidr: '10.96.0.10/32' }],
    },
  ],
};

class RollBack extends Error {
  constructor(readonly result: unknown) {
    super('roll back');
  }
}

/** The bundle's lists as the full certificate list gave them (the code before listDeviceCerts), rolled back. */
async function fromFullList(
  ctx: AppContext,
  at: Date,
): Promise<{ clients: AccessClient[]; rules: ResolvedRule[]; addresses: Record<string, string> }> {
  try {
    await ctx.store.transaction(async (tx) => {
      const valid = (await tx.listCerts({ status: 'valid' })).items.filter(
        (c) => c.kind !== 'server' && c.notAfter.getTime() > at.getTime(),
      );
      await ctx.addresses.backfill(valid, tx);
      const devices = await connectableDevices(tx, at, valid);
      const lists = await resolveBundle(await ctx.access.rules(tx), devices, ctx.groups, tx);
      const addresses = Object.fromEntries((await tx.listAddresses()).map((a) => [a.commonName, a.address]));
      throw new RollBack({ ...lists, addresses });
    });
  } catch (err) {
    if (err instanceof RollBack) return err.result as Awaited<ReturnType<typeof fromFullList>>;
    throw err;
  }
  throw new Error('not reached');
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`access bundle from the lean certificate read (${engine})`, function () {
    this.timeout(120_000);
    let t: { dir: string; cleanup: () => void };
    let ctx: AppContext;
    let template: CertRecord;
    const now = Date.now();

    /** A certificate row without a tunnel address (as rows from before addresses existed). */
    const row = (serial: string, commonName: string, ownerId: number | null, over: Partial<NewCert> = {}) =>
      ctx.store.insertCert({
        serial,
        commonName,
        ownerId,
        deviceName: commonName.split('.').pop()!,
        kind: 'client',
        keyType: 'ec-p256',
        notBefore: new Date(now - DAY),
        notAfter: new Date(now + 30 * DAY),
        certPem: template.certPem,
        ...over,
      });

    beforeEach(async () => {
      t = tempDir();
      ctx = await open(engine, t.dir);
      for (const [name, role] of [
        ['root', 'admin'],
        ['bob', 'user'],
        ['carol', 'user'],
        ['dave', 'user'],
      ] as const)
        await ctx.users.create({ actor: 'test', name, role });
      const id = async (name: string) => (await ctx.store.getUserByName(name))!.id;
      template = (await ctx.devices.issue({ actor: 'test', owner: 'bob', commonName: 'bob.laptop' })).cert;
      await ctx.devices.issue({ actor: 'test', owner: 'dave', commonName: 'dave.laptop' });
      await ctx.devices.issue({ actor: 'test', owner: 'carol', commonName: 'carol.laptop' });
      const gw = await ctx.devices.issue({
        actor: 'test',
        owner: 'root',
        commonName: 'gw-office',
        kind: 'gateway',
      });
      await ctx.store.upsertGateway({
        name: 'office',
        target: 'root@gw.example.test:22',
        certSerial: gw.cert.serial,
        status: 'ready',
        details: {},
        updatedAt: new Date(),
      });
      await ctx.groups.create({ actor: 'test', name: 'a' });
      await ctx.groups.addMember({ actor: 'test', group: 'a', user: 'bob' });
      await ctx.groups.addMember({ actor: 'test', group: 'a', user: 'dave' });
      // rows without an address: the bundle allocates them in the list's order
      for (let i = 0; i < 12; i++)
        await row(`7A${String(i).padStart(4, '0')}`, `dave.old${i}`, await id('dave'));
      await row('7B0001', 'bob.expired', await id('bob'), {
        notBefore: new Date(now - 60 * DAY),
        notAfter: new Date(now - DAY),
      });
      await row('7B0002', 'bob.future', await id('bob'), { notBefore: new Date(now + DAY) });
      await row('7B0003', 'vpn-server-x', null, { kind: 'server', deviceName: 'server' });
      await row('7B0004', 'bob.revoked', await id('bob'));
      await ctx.store.markRevoked('7B0004', 'keyCompromise', new Date());
      // a renewal: two valid certificates with one common name
      await ctx.store.transaction(async (tx) => {
        await tx.markSuperseding(template.serial, '7B0005', new Date(now + 7 * DAY));
        await tx.insertCert({
          serial: '7B0005',
          commonName: 'bob.laptop',
          ownerId: template.ownerId,
          deviceName: 'laptop',
          kind: 'client',
          keyType: 'ec-p256',
          notBefore: new Date(now - DAY),
          notAfter: new Date(now + 60 * DAY),
          certPem: template.certPem,
        });
      });
      await row('7B0006', 'carol.disabled-owner', await id('carol'));
      await ctx.store.updateUser(await id('carol'), { disabled: true });
      await ctx.access.apply({ actor: 'test', input: RULES });
    });
    afterEach(async () => {
      await ctx.close();
      t.cleanup();
    });

    it('listDeviceCerts: the valid client and gateway rows of listCerts, same order, without PEM', async () => {
      const full = (await ctx.store.listCerts({ status: 'valid' })).items.filter((c) => c.kind !== 'server');
      const lean = await ctx.store.listDeviceCerts();
      assert.deepEqual(
        lean,
        full.map((c) => ({
          serial: c.serial,
          commonName: c.commonName,
          ownerId: c.ownerId,
          kind: c.kind,
          notBefore: c.notBefore,
          notAfter: c.notAfter,
        })),
      );
      assert.ok(lean.some((c) => c.kind === 'gateway') && lean.some((c) => c.serial === '7B0001'));
      assert.ok(!lean.some((c) => 'certPem' in c));
    });

    it('the same clients, rules and newly allocated addresses as from the full list', async () => {
      const at = new Date();
      const before = await fromFullList(ctx, at);
      // the full-list run was rolled back: the old rows still have no address
      assert.equal(await ctx.addresses.get('dave.old0'), undefined);
      const b = await ctx.access.bundle();
      assert.deepEqual(b.clients, before.clients);
      assert.deepEqual(b.rules, before.rules);
      const after = Object.fromEntries(
        (await ctx.store.listAddresses()).map((a) => [a.commonName, a.address]),
      );
      assert.deepEqual(after, before.addresses);
      // what makes the comparison worth something: each kind of row is in the data and decided
      const names = b.clients.map((c) => c.commonName);
      for (const cn of ['bob.laptop', 'dave.laptop', 'dave.old0', 'dave.old11', 'gw-office'])
        assert.ok(names.includes(cn), cn);
      for (const cn of [
        'bob.expired',
        'bob.future',
        'vpn-server-x',
        'bob.revoked',
        'carol.laptop',
        'carol.disabled-owner',
      ])
        assert.ok(!names.includes(cn), cn);
      assert.equal(names.filter((n) => n === 'bob.laptop').length, 1);
      assert.equal(b.rules.find((r) => r.name === 'office')!.clients.length, 1);
      assert.equal(b.rules.find((r) => r.name === 'team-a')!.clients.length, 14);
    });
  });
}
