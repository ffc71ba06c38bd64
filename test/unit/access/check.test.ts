import assert from 'node:assert/strict';
import type {
  AccessBundle,
  AccessRule,
  NamespaceObject,
  PodObject,
  ServiceObject,
} from '../../../src/access/types.js';
import { AppError } from '../../../src/lib/errors.js';
import { parseCheckTarget, rulesReaching, type ClusterObjects } from '../../../src/services/access-check.js';
import type { AppContext } from '../../../src/services/context.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

const rules: AccessRule[] = [
  {
    name: 'web-only',
    subjects: [{ kind: 'everyone' }],
    destinations: [{ kind: 'service', namespace: 'team-a', name: 'web' }],
    protocol: 'tcp',
    ports: [{ from: 443, to: 443 }],
  },
  {
    name: 'prod-ns',
    subjects: [{ kind: 'everyone' }],
    destinations: [{ kind: 'namespace', selector: { matchLabels: { env: 'prod' } } }],
  },
  {
    name: 'office',
    subjects: [{ kind: 'everyone' }],
    destinations: [{ kind: 'cidr', cidr: '192.168.10.0/24' }],
    protocol: 'udp',
  },
  {
    name: 'db-pods',
    subjects: [{ kind: 'everyone' }],
    destinations: [
      {
        kind: 'pod',
        namespace: 'team-b',
        selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] },
      },
    ],
  },
];

/** Cluster objects as the manager lists them (a fixed set; the listing itself is tested against a real API server elsewhere). */
const objects: ClusterObjects = {
  namespaces: async (): Promise<NamespaceObject[]> => [
    { name: 'team-a', labels: {} },
    { name: 'team-b', labels: { env: 'prod' } },
  ],
  services: async (): Promise<ServiceObject[]> => [
    {
      namespace: 'team-a',
      name: 'web',
      labels: {},
      clusterIPs: ['10.96.0.10'],
      ports: [{ protocol: 'TCP', port: 443 }],
      selector: { app: 'web' },
    },
  ],
  pods: async (): Promise<PodObject[]> => [
    { uid: 'u1', namespace: 'team-b', name: 'db-0', labels: { app: 'db' }, ips: ['10.244.2.7'] },
  ],
};

describe('access: check targets and the deciding rule', function () {
  this.timeout(60_000);

  it('parses the three destination forms and refuses the rest naming `destination`', () => {
    assert.deepEqual(parseCheckTarget('ns/team-a'), { kind: 'namespace', namespace: 'team-a' });
    assert.deepEqual(parseCheckTarget('svc/team-a/web:443'), {
      kind: 'service',
      namespace: 'team-a',
      name: 'web',
      port: 443,
      protocol: 'tcp',
    });
    assert.deepEqual(parseCheckTarget('svc/team-a/dns:53/udp'), {
      kind: 'service',
      namespace: 'team-a',
      name: 'dns',
      port: 53,
      protocol: 'udp',
    });
    assert.deepEqual(parseCheckTarget('10.244.1.5'), { kind: 'ip', ip: '10.244.1.5' });
    assert.deepEqual(parseCheckTarget('FD00:10:244:1:0::5'), { kind: 'ip', ip: 'fd00:10:244:1::5' });
    assert.deepEqual(parseCheckTarget('[fd00:10:96::a]:53/udp'), {
      kind: 'ip',
      ip: 'fd00:10:96::a',
      port: 53,
      protocol: 'udp',
    });
    assert.deepEqual(parseCheckTarget('10.244.1.5:80/tcp'), {
      kind: 'ip',
      ip: '10.244.1.5',
      port: 80,
      protocol: 'tcp',
    });
    for (const bad of [
      '',
      'ns/Team',
      'svc/a',
      'svc/a/b/c',
      'svc/a/b:0',
      '10.244.1.5:70000',
      'host.example:80',
      '[10.244.1.5]:80',
      '[fd00::g]:80',
      '[fd00::1]:0',
      'x/y',
    ]) {
      assert.throws(
        () => parseCheckTarget(bad),
        (e: unknown) => e instanceof AppError && e.field === 'destination',
        bad,
      );
    }
  });

  it('names and ports by name only, without a cluster', () => {
    assert.equal(rulesReaching(rules, parseCheckTarget('svc/team-a/web:443'), {})[0]?.rule, 'web-only');
    assert.deepEqual(rulesReaching(rules, parseCheckTarget('svc/team-a/web:80'), {}), []);
    assert.deepEqual(rulesReaching(rules, parseCheckTarget('svc/team-a/web:443/udp'), {}), []);
    assert.deepEqual(
      rulesReaching(rules, parseCheckTarget('ns/team-b'), {}),
      [],
      'a selector is not evaluated without labels',
    );
    assert.equal(rulesReaching(rules, parseCheckTarget('192.168.10.4:53/udp'), {})[0]?.rule, 'office');
    assert.deepEqual(rulesReaching(rules, parseCheckTarget('192.168.10.4:53/tcp'), {}), []);
    const six = [
      { name: 'v6', subjects: [], destinations: [{ kind: 'cidr' as const, cidr: 'fd00:10:244::/56' }] },
    ];
    assert.equal(
      rulesReaching(six, parseCheckTarget('[fd00:10:244:1::5]:80/tcp'), {})[0]?.covers,
      'cidr fd00:10:244::/56',
    );
    assert.deepEqual(
      rulesReaching(six, parseCheckTarget('10.244.1.5:80/tcp'), {}),
      [],
      'an IPv6 range covers no IPv4',
    );
  });

  describe('with a context', () => {
    let t: ReturnType<typeof tempDir>;
    let ctx: AppContext;
    const published: AccessBundle[] = [];
    before(async () => {
      t = tempDir();
      ctx = await testContext(
        t.dir,
        {},
        { accessPublishers: [{ name: 'record', publish: async (b) => void published.push(b) }] },
      );
      for (const name of ['bob', 'carol']) await ctx.users.create({ actor: 'test', name, role: 'user' });
      await ctx.groups.create({ actor: 'test', name: 'a' });
      await ctx.groups.addMember({ actor: 'test', group: 'a', user: 'bob' });
      await ctx.access.apply({
        actor: 'test',
        input: {
          rules: [
            {
              name: 'team-a',
              subjects: [{ kind: 'group', name: 'a' }],
              destinations: [{ kind: 'namespace', names: ['team-a'] }],
            },
            ...rules.slice(1),
          ],
        },
      });
    });
    after(() => {
      ctx.close();
      t.cleanup();
    });

    it('allow names the rule; deny says no rule allows it', async () => {
      const yes = await ctx.accessQueries.check('bob', 'svc/team-a/web:443');
      assert.equal(yes.decision, 'allow');
      assert.equal(yes.rule, 'team-a');
      assert.equal(yes.evaluatedWith, 'names');
      const no = await ctx.accessQueries.check('carol', 'ns/team-a');
      assert.equal(no.decision, 'deny');
      assert.equal(no.rule, undefined);
    });

    it('selectors and addresses are evaluated with the cluster objects', async () => {
      const ns = await ctx.accessQueries.check('carol', 'ns/team-b', objects);
      assert.equal(ns.rule, 'prod-ns');
      assert.equal(ns.evaluatedWith, 'cluster');
      const pod = await ctx.accessQueries.check('carol', '10.244.2.7:5432/tcp', objects);
      assert.equal(pod.rule, 'prod-ns', 'the first rule in order decides');
      const svcIp = await ctx.accessQueries.check('bob', '10.96.0.10:443/tcp', objects);
      assert.equal(svcIp.rule, 'team-a');
      const who = await ctx.accessQueries.whoCanReach('ns/team-a');
      assert.deepEqual(
        who.reachers.map((r) => [r.rule, r.users]),
        [['team-a', ['bob']]],
      );
      assert.deepEqual(
        ctx.accessQueries.reachOf('bob').map((r) => [r.rule, r.via]),
        [
          ['team-a', 'group a'],
          ['prod-ns', 'everyone'],
          ['office', 'everyone'],
          ['db-pods', 'everyone'],
        ],
      );
    });

    it('every change was published with a rising version', () => {
      assert.ok(published.length >= 3, `published ${published.length}`);
      const versions = published.map((b) => b.version);
      assert.deepEqual(
        versions,
        [...versions].sort((a, b) => a - b),
      );
      assert.equal(new Set(versions).size, versions.length);
      assert.equal(published.at(-1)!.version, ctx.access.version());
    });
  });
});
