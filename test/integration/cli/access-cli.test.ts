import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessBundle } from '../../../src/access/types.js';
import { SqliteStore } from '../../../src/store/index.js';
import { runCli, tempDir } from '../../helpers/cli.js';

const FIXTURE = join(process.cwd(), 'test', 'fixtures', 'datadir-v0.1.0');

const RULES = `rules:
  - name: team-a
    subjects:
      - kind: group
        name: a
    destinations:
      - kind: namespace
        names: [team-a]
      - kind: pod
        namespace: team-b
        selector:
          matchLabels: { app: db }
    protocol: tcp
    ports:
      - { from: 5432, to: 5432 }
`;

describe('CLI: groups and access rules on a real data dir', function () {
  this.timeout(120_000);
  const t = tempDir();
  const dataDir = join(t.dir, 'data');
  const env = {
    PODGATE_VPN_ENDPOINTS: '172.18.12.21',
    PODGATE_DATA_DIR: dataDir,
    PODGATE_VPN_CLIENT_SUBNET: '10.140.0.0/24',
  };
  const cli = (...args: string[]) => runCli(args, env);
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const accessFile = () =>
    JSON.parse(readFileSync(join(dataDir, 'server', 'access.json'), 'utf8')) as AccessBundle;

  before(async () => {
    const pw = join(t.dir, 'admin.pw');
    writeFileSync(pw, 'correct horse battery staple\n');
    const init = await runCli(['init'], { ...env, PODGATE_ADMIN_PASSWORD_FILE: pw });
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /access\.mode: enforce/);
    assert.match(init.stdout, /access rule admins-everything written: group admins/);
    await ok('user', 'add', 'bob');
    await ok('cert', 'issue', 'bob.laptop', '--owner', 'bob', '--out', join(t.dir, 'bob.ovpn'));
    await ok('cert', 'issue', 'admin.laptop', '--owner', 'admin', '--out', join(t.dir, 'admin.ovpn'));
  });
  after(() => t.cleanup());

  it('init wrote the admins rule, and the published bundle gives admins everything', async () => {
    assert.match(await ok('access', 'export'), /name: admins-everything[\s\S]*cidr: 0\.0\.0\.0\/0/);
    assert.match(await ok('access', 'mode'), /access\.mode: enforce \(data dir\)/);
    const b = accessFile();
    assert.equal(b.mode, 'enforce');
    assert.deepEqual(b.clients.map((c) => [c.commonName, c.address]).sort(), [
      ['admin.laptop', '10.140.0.3'],
      ['bob.laptop', '10.140.0.2'],
    ]);
    assert.deepEqual(b.rules[0]!.clients, ['10.140.0.3']);
  });

  it('group add/member add/list --json; every change is published to access.json', async () => {
    await ok('group', 'add', 'a', '--description', 'team a');
    const v = accessFile().version;
    await ok('group', 'member', 'add', 'a', 'bob');
    assert.ok(accessFile().version > v);
    const list = JSON.parse(await ok('--json', 'group', 'list')) as { name: string; members: string[] }[];
    assert.deepEqual(
      list.map((g) => [g.name, g.members]),
      [['a', ['bob']]],
    );
    const dup = await cli('group', 'member', 'add', 'a', 'bob');
    assert.equal(dup.code, 2);
    const bad = await cli('group', 'add', 'Not A Name');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /name must match/);
  });

  it('apply --dry-run prints the difference and changes nothing; apply changes; export round-trips', async () => {
    const file = join(t.dir, 'rules.yaml');
    writeFileSync(file, RULES);
    const before = await ok('access', 'export');
    const v = accessFile().version;
    const dry = await ok('access', 'apply', '-f', file, '--dry-run');
    assert.match(dry, /\+ create team-a/);
    assert.match(dry, /- delete admins-everything/);
    assert.match(dry, /dry run: nothing changed/);
    assert.equal(await ok('access', 'export'), before);
    assert.equal(accessFile().version, v);
    await ok('access', 'apply', '-f', file);
    const b = accessFile();
    assert.ok(b.version > v);
    assert.deepEqual(
      b.rules.map((r) => [r.name, r.clients]),
      [['team-a', ['10.140.0.2']]],
    );
    const exported = join(t.dir, 'exported.yaml');
    writeFileSync(exported, await ok('access', 'export'));
    assert.match(
      await ok('access', 'apply', '-f', exported, '--dry-run'),
      /0 to create, 0 to update, 0 to delete, 1 unchanged/,
    );
  });

  it('a bad rules.yaml: exit 2, the field named, nothing changed', async () => {
    const file = join(t.dir, 'bad.yaml');
    writeFileSync(file, RULES.replace('{ from: 5432, to: 5432 }', '{ from: 5432, to: 70000 }'));
    const before = await ok('access', 'export');
    const r = await cli('access', 'apply', '-f', file);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /rules\[0\]\.ports\[0\]\.to/);
    assert.equal(await ok('access', 'export'), before);
  });

  it('check prints allow/deny with the deciding rule and says selectors were not evaluated', async () => {
    const allow = await ok('access', 'check', 'bob', 'svc/team-a/web:5432');
    assert.match(allow, /^allow bob -> svc\/team-a\/web:5432: rule team-a \(namespace team-a; tcp 5432\)$/m);
    assert.match(allow, /names only: no cluster configured, selectors not evaluated/);
    assert.match(
      await ok('access', 'check', 'bob', 'svc/team-a/web:80'),
      /^deny bob -> svc\/team-a\/web:80: no rule allows it$/m,
    );
    assert.match(await ok('access', 'check', 'admin', 'ns/team-a'), /^deny /m);
    const bad = await cli('access', 'check', 'bob', 'team-a');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /destination/);
  });

  it('revoking a device drops it from access.json', async () => {
    await ok('cert', 'revoke', 'bob.laptop', '--reason', 'keyCompromise');
    const b = accessFile();
    assert.deepEqual(
      b.clients.map((c) => c.commonName),
      ['admin.laptop'],
    );
    assert.deepEqual(b.rules[0]!.clients, []);
  });

  it('a data dir from before access rules keeps open mode, and its devices get addresses', async () => {
    const old = join(t.dir, 'old');
    cpSync(FIXTURE, old, { recursive: true });
    const oldEnv = { ...env, PODGATE_DATA_DIR: old };
    const mode = await runCli(['access', 'mode'], oldEnv);
    assert.equal(mode.code, 0, mode.stderr);
    assert.match(mode.stdout, /access\.mode: open \(data dir\)/);
    const forced = await runCli(['access', 'mode'], { ...oldEnv, PODGATE_ACCESS_MODE: 'enforce' });
    assert.match(forced.stdout, /access\.mode: enforce \(config\)/);
    const check = await runCli(['access', 'check', 'alice', 'ns/team-a'], oldEnv);
    assert.match(check.stdout, /^allow alice -> ns\/team-a: no rule allows it$/m);
    assert.match(check.stdout, /access\.mode is open/);
    // the first change (here a group) publishes a bundle, which gives every valid device an address
    assert.equal((await runCli(['group', 'add', 'ops'], oldEnv)).code, 0);
    assert.equal(
      (JSON.parse(readFileSync(join(old, 'server', 'access.json'), 'utf8')) as AccessBundle).mode,
      'open',
    );
    const store = SqliteStore.open(join(old, 'podgate.db'));
    try {
      assert.equal((await store.listRules()).length, 0, 'no rule is written into an existing install');
      assert.ok(await store.getAddress('alice-laptop'), 'a device issued before addresses gets one');
      assert.equal(await store.getAddress('alice-phone'), undefined, 'a revoked one does not');
    } finally {
      await store.close();
    }
  });
});
