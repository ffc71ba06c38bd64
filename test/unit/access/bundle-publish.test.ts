import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessBundle } from '../../../src/access/types.js';
import { AppError } from '../../../src/lib/errors.js';
import type { AppContext } from '../../../src/services/context.js';
import { LocalAccessPublisher } from '../../../src/openvpn/access-publisher.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

const ISSUER = 'https://idp.example.test';

/** Users and devices covering every kind of subject. */
async function people(ctx: AppContext): Promise<Record<string, string>> {
  const addr: Record<string, string> = {};
  const dev = async (owner: string, cn: string, kind: 'client' | 'gateway' = 'client') => {
    const { cert } = await ctx.devices.issue({ actor: 'test', owner, commonName: cn, kind });
    addr[cn] = (await ctx.addresses.get(cn))!.address;
    return cert;
  };
  for (const [name, role] of [
    ['root', 'admin'],
    ['bob', 'user'],
    ['carol', 'user'],
    ['dave', 'user'],
    ['erin', 'user'],
  ] as const)
    await ctx.users.create({ actor: 'test', name, role });
  await dev('root', 'root.laptop');
  await dev('bob', 'bob.laptop');
  await dev('carol', 'carol.laptop');
  await dev('dave', 'dave.laptop');
  await dev('erin', 'erin.laptop');
  await dev('erin', 'erin.phone');
  const gw = await dev('root', 'gw-office', 'gateway');
  await ctx.store.upsertGateway({
    name: 'office',
    target: 'root@gw.example.test:22',
    certSerial: gw.serial,
    status: 'ready',
    details: {},
    updatedAt: new Date(),
  });
  await ctx.groups.create({ actor: 'test', name: 'a' });
  await ctx.groups.addMember({ actor: 'test', group: 'a', user: 'bob' });
  await ctx.store.insertOidcIdentity({
    issuer: ISSUER,
    subject: 'carol-sub',
    userId: (await ctx.store.getUserByName('carol'))!.id,
    groups: ['Team B'],
    refreshToken: null,
    createdAt: new Date(),
    lastLoginAt: null,
  });
  return addr;
}

const RULES = {
  rules: [
    {
      name: 'by-user',
      subjects: [{ kind: 'user', name: 'dave' }],
      destinations: [{ kind: 'cidr', cidr: '10.1.0.0/16' }],
    },
    {
      name: 'by-local-group',
      subjects: [{ kind: 'group', name: 'a' }],
      destinations: [{ kind: 'namespace', names: ['team-a'] }],
    },
    {
      name: 'by-sso-group',
      subjects: [{ kind: 'group', name: 'Team B' }],
      destinations: [{ kind: 'namespace', names: ['team-b'] }],
      protocol: 'tcp',
      ports: [{ from: 443, to: 443 }],
    },
    {
      name: 'by-admins',
      subjects: [{ kind: 'group', name: 'admins' }],
      destinations: [{ kind: 'cidr', cidr: '0.0.0.0/0' }],
    },
    {
      name: 'by-gateway',
      subjects: [{ kind: 'gateway', name: 'office' }],
      destinations: [{ kind: 'namespace', names: ['team-a'] }],
    },
    {
      name: 'by-everyone',
      subjects: [{ kind: 'everyone' }],
      destinations: [{ kind: 'service', namespace: 'kube-system', name: 'metrics' }],
    },
  ],
};

describe('access: subjects resolve to tunnel addresses; the bundle', function () {
  this.timeout(60_000);
  let t: ReturnType<typeof tempDir>;
  let ctx: AppContext;
  let addr: Record<string, string>;
  const clientsOf = (b: AccessBundle, rule: string) =>
    [...b.rules.find((r) => r.name === rule)!.clients].sort();
  const of = (...cns: string[]) => cns.map((cn) => addr[cn]!).sort();

  beforeEach(async () => {
    t = tempDir();
    ctx = await testContext(t.dir);
    addr = await people(ctx);
    await ctx.access.apply({ actor: 'test', input: RULES });
  });
  afterEach(async () => {
    await ctx.close();
    t.cleanup();
  });

  it('user, local group, single sign-on group, admins, gateway and everyone each resolve to their devices', async () => {
    const b = await ctx.access.bundle();
    assert.deepEqual(clientsOf(b, 'by-user'), of('dave.laptop'));
    assert.deepEqual(clientsOf(b, 'by-local-group'), of('bob.laptop'));
    assert.deepEqual(clientsOf(b, 'by-sso-group'), of('carol.laptop'));
    assert.deepEqual(
      clientsOf(b, 'by-admins'),
      of('root.laptop'),
      'a person rule does not open the admin-owned gateway',
    );
    assert.deepEqual(clientsOf(b, 'by-gateway'), of('gw-office'));
    assert.deepEqual(clientsOf(b, 'by-everyone'), Object.values(addr).sort());
    assert.equal(b.clients.length, 7);
    assert.equal(b.mode, 'enforce');
    const ssoRule = b.rules.find((r) => r.name === 'by-sso-group')!;
    assert.equal(ssoRule.protocol, 'tcp');
    assert.deepEqual(ssoRule.ports, [{ from: 443, to: 443 }]);
    assert.equal(b.rules.find((r) => r.name === 'by-user')!.protocol, 'any');
  });

  it('a gateway is in its rules from the moment its certificate exists, before its record names the serial', async () => {
    // `gateway provision` records the serial only when every step is done ('ready'), but the device can
    // connect (it is in `clients`) as soon as the certificate step issued it: first provision, record
    // with no serial yet ...
    await ctx.store.upsertGateway({
      name: 'branch',
      target: 'root@branch.example.test:22',
      certSerial: null,
      status: 'provisioning',
      details: {},
      updatedAt: new Date(),
    });
    await ctx.access.apply({
      actor: 'test',
      input: {
        rules: [
          ...RULES.rules,
          {
            name: 'by-branch',
            subjects: [{ kind: 'gateway', name: 'branch' }],
            destinations: [{ kind: 'cidr', cidr: '0.0.0.0/0' }],
          },
        ],
      },
    });
    await ctx.devices.issue({
      actor: 'test',
      owner: 'root',
      commonName: 'gw-branch',
      kind: 'gateway',
    });
    const branch = (await ctx.addresses.get('gw-branch'))!.address;
    let b = await ctx.access.bundle();
    assert.ok(
      b.clients.some((c) => c.commonName === 'gw-branch'),
      'the gateway may connect',
    );
    assert.deepEqual(clientsOf(b, 'by-branch'), [branch], 'and what it reaches is its rule');
    // ... and a re-provision that replaced the certificate of a ready gateway (old serial in the record)
    await ctx.revocation.revoke({ actor: 'test', serialOrName: 'gw-office' });
    const again = await ctx.devices.issue({
      actor: 'test',
      owner: 'root',
      commonName: 'gw-office',
      kind: 'gateway',
    });
    assert.notEqual(again.cert.serial, (await ctx.store.getGateway('office'))!.certSerial);
    b = await ctx.access.bundle();
    assert.deepEqual(clientsOf(b, 'by-gateway'), of('gw-office'));
    // a client certificate that happens to be called gw-<name> is not that gateway
    await ctx.store.upsertGateway({
      name: 'spoof',
      target: 'root@spoof.example.test:22',
      certSerial: null,
      status: 'provisioning',
      details: {},
      updatedAt: new Date(),
    });
    await ctx.devices.issue({ actor: 'test', owner: 'bob', commonName: 'gw-spoof', kind: 'client' });
    await ctx.access.apply({
      actor: 'test',
      input: {
        rules: [
          ...RULES.rules,
          {
            name: 'by-spoof',
            subjects: [{ kind: 'gateway', name: 'spoof' }],
            destinations: [{ kind: 'cidr', cidr: '0.0.0.0/0' }],
          },
        ],
      },
    });
    assert.deepEqual(clientsOf(await ctx.access.bundle(), 'by-spoof'), []);
  });

  it('a disabled user and a revoked device drop out of clients and rules; the version rises', async () => {
    const v0 = (await ctx.access.bundle()).version;
    await ctx.users.disable({ actor: 'test', name: 'dave' });
    await ctx.revocation.revoke({ actor: 'test', serialOrName: 'erin.phone' });
    const b = await ctx.access.bundle();
    assert.ok(b.version > v0);
    assert.deepEqual(clientsOf(b, 'by-user'), []);
    const clients = b.clients.map((c) => c.commonName);
    assert.ok(!clients.includes('dave.laptop'));
    assert.ok(!clients.includes('erin.phone'));
    assert.ok(clients.includes('erin.laptop'));
    assert.ok(!clientsOf(b, 'by-everyone').includes(addr['erin.phone']!));
  });

  it('a local group change and a single sign-on group change move the device and raise the version', async () => {
    const v0 = (await ctx.access.bundle()).version;
    await ctx.groups.removeMember({ actor: 'test', group: 'a', user: 'bob' });
    const v1 = await ctx.access.bundle();
    assert.ok(v1.version > v0);
    assert.deepEqual(clientsOf(v1, 'by-local-group'), []);
    await ctx.store.updateOidcIdentity(ISSUER, 'carol-sub', { groups: ['a'] });
    const v2 = await ctx.access.bundle();
    assert.ok(v2.version > v1.version);
    assert.deepEqual(clientsOf(v2, 'by-local-group'), of('carol.laptop'));
    assert.deepEqual(clientsOf(v2, 'by-sso-group'), []);
    assert.deepEqual(
      (await ctx.store.listAudit({ action: 'group.member.remove' })).map((e) => [e.target, e.details.user]),
      [['a', 'bob']],
    );
  });

  it('the same state gives the same version; time alone (an expiry) gives a new one', async () => {
    const a = await ctx.access.bundle();
    const b = await ctx.access.bundle();
    assert.equal(a.version, b.version);
    await ctx.close();
    const later = new Date(Date.now() + 400 * 86_400_000);
    ctx = await testContext(t.dir, {}, { now: () => later });
    const c = await ctx.access.bundle();
    assert.ok(c.version > b.version);
    assert.equal(c.clients.length, 0, 'every certificate has expired');
  });

  it('open mode still publishes clients with their addresses', async () => {
    await ctx.access.setMode({ actor: 'test', mode: 'open' });
    const b = await ctx.access.bundle();
    assert.equal(b.mode, 'open');
    assert.equal(b.clients.length, 7);
    assert.equal((await ctx.store.listAudit({ action: 'access.mode' }))[0]!.target, 'open');
  });

  it('apply, dry run, export: the round trip is exact, a dry run changes nothing, and audit rows name each change', async () => {
    const exported = await ctx.access.exportYaml();
    const again = await ctx.access.apply({
      actor: 'test',
      input: ctx.access.parseYaml(exported),
      dryRun: true,
    });
    assert.deepEqual(again, {
      create: [],
      update: [],
      delete: [],
      unchanged: RULES.rules.map((r) => r.name),
    });
    assert.deepEqual(await ctx.access.rules(), RULES.rules);
    const v = await ctx.access.version();
    const changed = {
      rules: [
        { ...RULES.rules[0]!, destinations: [{ kind: 'cidr', cidr: '10.2.0.0/16' }] },
        RULES.rules[1]!,
        {
          name: 'new',
          subjects: [{ kind: 'everyone' }],
          destinations: [{ kind: 'cidr', cidr: '10.9.0.0/16' }],
        },
      ],
    };
    const dry = await ctx.access.apply({ actor: 'test', input: changed, dryRun: true });
    assert.deepEqual(dry, {
      create: ['new'],
      update: ['by-user'],
      delete: ['by-sso-group', 'by-admins', 'by-gateway', 'by-everyone'],
      unchanged: ['by-local-group'],
    });
    assert.equal(await ctx.access.version(), v, 'a dry run changes nothing');
    assert.equal(await ctx.access.exportYaml(), exported);
    const real = await ctx.access.apply({ actor: 'alice', input: changed });
    assert.deepEqual(real, dry);
    assert.deepEqual(await ctx.access.rules(), changed.rules);
    assert.ok((await ctx.access.version()) > v);
    const rows = (await ctx.store.listAudit({ limit: 10 }))
      .filter((e) => e.actor === 'alice')
      .map((e) => `${e.action} ${e.target}`);
    assert.deepEqual(rows.sort(), [
      'access.rule.create new',
      'access.rule.delete by-admins',
      'access.rule.delete by-everyone',
      'access.rule.delete by-gateway',
      'access.rule.delete by-sso-group',
      'access.rule.update by-user',
    ]);
  });

  it('an invalid document changes nothing at all (no rule, no audit row, same version)', async () => {
    const before = await ctx.access.exportYaml();
    const v = await ctx.access.version();
    const audits = (await ctx.store.listAudit({ limit: 1000 })).length;
    const bad = {
      rules: [
        {
          name: 'fine',
          subjects: [{ kind: 'everyone' }],
          destinations: [{ kind: 'cidr', cidr: '10.0.0.0/8' }],
        },
        {
          name: 'bad',
          subjects: [{ kind: 'everyone' }],
          destinations: [{ kind: 'cidr', cidr: '10.0.0.0/8' }],
          ports: [{ from: 1, to: 2 }],
        },
      ],
    };
    await assert.rejects(ctx.access.apply({ actor: 'test', input: bad }), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.field, 'rules[1].ports');
      return true;
    });
    assert.equal(await ctx.access.exportYaml(), before);
    assert.equal(await ctx.access.version(), v);
    assert.equal((await ctx.store.listAudit({ limit: 1000 })).length, audits);
    assert.throws(
      () => ctx.access.parseYaml('rules: [\n  - {'),
      (err: unknown) => (err as AppError).field === 'rules.yaml',
    );
  });

  it('the local publisher writes access.json atomically and never goes back to a lower version', async () => {
    const dir = join(t.dir, 'pub');
    const p = new LocalAccessPublisher(dir);
    const b = await ctx.access.bundle();
    await p.publish({ ...b, version: 10 });
    await p.publish({ ...b, version: 9, mode: 'open' });
    const stored = JSON.parse(readFileSync(join(dir, 'access.json'), 'utf8')) as AccessBundle;
    assert.equal(stored.version, 10);
    assert.equal(stored.mode, 'enforce');
    await p.publish({ ...b, version: 11 });
    assert.equal((JSON.parse(readFileSync(join(dir, 'access.json'), 'utf8')) as AccessBundle).version, 11);
  });

  it('after a restore (the target holds a higher version) the first publication raises the version above it', async () => {
    const dir = join(t.dir, 'server-restored');
    const p = new LocalAccessPublisher(dir);
    const b = await ctx.access.bundle();
    await p.publish({ ...b, version: b.version + 1000, mode: 'open' }); // left by the manager before the restore
    ctx.access.addPublisher(p);
    await ctx.access.refresh();
    const stored = JSON.parse(readFileSync(join(dir, 'access.json'), 'utf8')) as AccessBundle;
    assert.equal(stored.version, b.version + 1001);
    assert.equal(stored.mode, 'enforce', 'the current state, not the held one');
    assert.equal(await ctx.access.version(), b.version + 1001);
    const raise = (await ctx.store.listAudit({ action: 'access.version.raise' }))[0]!;
    assert.deepEqual(raise.details, { from: b.version, heldByTarget: b.version + 1000 });
    // only the first publication of a process may raise: later ones leave a higher held version alone
    await p.publish({ ...stored, version: stored.version + 50 });
    await ctx.groups.create({ actor: 'test', name: 'later' });
    assert.equal((await ctx.store.listAudit({ action: 'access.version.raise' })).length, 1);
    assert.equal(
      (JSON.parse(readFileSync(join(dir, 'access.json'), 'utf8')) as AccessBundle).version,
      stored.version + 50,
    );
  });
});
