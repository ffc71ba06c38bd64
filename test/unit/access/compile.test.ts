import assert from 'node:assert/strict';
import { AccessCompiler, mergeDeltas, type CompileDelta } from '../../../src/access/compile.js';
import { ruleSetId } from '../../../src/access/elements.js';
import type {
  ClusterEvent,
  Destination,
  NamespaceObject,
  PodObject,
  ResolvedRule,
  ServiceObject,
} from '../../../src/access/types.js';

const ns = (name: string, labels: Record<string, string> = {}): NamespaceObject => ({ name, labels });
const pod = (uid: string, namespace: string, ip: string, labels: Record<string, string> = {}): PodObject => ({
  uid,
  namespace,
  name: uid,
  labels,
  ips: [ip],
});
const svc = (
  namespace: string,
  name: string,
  clusterIP: string,
  selector: Record<string, string> | null,
  ports: ServiceObject['ports'] = [{ protocol: 'TCP', port: 80 }],
  labels: Record<string, string> = {},
): ServiceObject => ({ namespace, name, labels, clusterIPs: [clusterIP], ports, selector });
const rule = (name: string, destinations: Destination[], more: Partial<ResolvedRule> = {}): ResolvedRule => ({
  name,
  clients: ['10.140.0.2'],
  destinations,
  protocol: 'any',
  ports: [],
  ...more,
});
const up = (kind: 'namespace' | 'pod' | 'service', object: unknown): ClusterEvent =>
  ({ type: 'upsert', kind, object }) as ClusterEvent;

/** The world every table case starts from: team-a and team-b, two pods and a Service each. */
function world(): ClusterEvent[] {
  return [
    up('namespace', ns('team-a', { team: 'a', env: 'prod' })),
    up('namespace', ns('team-b', { team: 'b', env: 'prod' })),
    up('pod', pod('a1', 'team-a', '10.244.1.5', { app: 'web' })),
    up('pod', pod('a2', 'team-a', '10.244.1.6', { app: 'db' })),
    up('pod', pod('b1', 'team-b', '10.244.2.5', { app: 'web' })),
    up('service', svc('team-a', 'web', '10.96.0.20', { app: 'web' })),
    up('service', svc('team-b', 'web', '10.96.0.30', { app: 'web' }, [{ protocol: 'UDP', port: 53 }])),
  ];
}

function compiled(rules: ResolvedRule[], events = world()): AccessCompiler {
  const c = new AccessCompiler();
  c.setRules(rules);
  for (const e of events) c.apply(e);
  return c;
}

/** Rule `name`'s sets as sorted arrays: any-set addresses and port-set keys. */
function sets(c: AccessCompiler, name: string): { any: string[]; ports: string[]; clients: string[] } {
  const r = c.snapshot().find((x) => x.name === name)!;
  return {
    any: r.any,
    ports: r.ports.map((p) => `${p.addr}|${p.proto}|${p.from}-${p.to}`).sort(),
    clients: r.clients,
  };
}

describe('access/compile', () => {
  const cases: {
    name: string;
    rule: ResolvedRule;
    any: string[];
    ports: string[];
  }[] = [
    {
      name: 'namespace by name: every pod (any port) and each ClusterIP port',
      rule: rule('r', [{ kind: 'namespace', names: ['team-a'] }]),
      any: ['10.244.1.5', '10.244.1.6'],
      ports: ['10.96.0.20|tcp|80-80'],
    },
    {
      name: 'namespace by label selector (In) matches team-b only',
      rule: rule('r', [
        {
          kind: 'namespace',
          selector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['b'] }] },
        },
      ]),
      any: ['10.244.2.5'],
      ports: ['10.96.0.30|udp|53-53'],
    },
    {
      name: 'empty namespace selector matches every namespace',
      rule: rule('r', [{ kind: 'namespace', selector: {} }]),
      any: ['10.244.1.5', '10.244.1.6', '10.244.2.5'],
      ports: ['10.96.0.20|tcp|80-80', '10.96.0.30|udp|53-53'],
    },
    {
      name: 'pod selector in a namespace gives only matching pod IPs',
      rule: rule('r', [{ kind: 'pod', namespace: 'team-a', selector: { matchLabels: { app: 'db' } } }]),
      any: ['10.244.1.6'],
      ports: [],
    },
    {
      name: 'service by name: ClusterIP on its ports plus the selected pods on any port',
      rule: rule('r', [{ kind: 'service', namespace: 'team-a', name: 'web' }]),
      any: ['10.244.1.5'],
      ports: ['10.96.0.20|tcp|80-80'],
    },
    {
      name: 'rule ports narrow pods and the ClusterIP (service port outside the range is left out)',
      rule: rule('r', [{ kind: 'namespace', names: ['team-a'] }], {
        protocol: 'tcp',
        ports: [{ from: 8000, to: 8100 }],
      }),
      any: [],
      ports: ['10.244.1.5|tcp|8000-8100', '10.244.1.6|tcp|8000-8100'],
    },
    {
      name: 'protocol any with ports: tcp, udp and sctp on the merged ranges',
      rule: rule('r', [{ kind: 'pod', namespace: 'team-a', selector: { matchLabels: { app: 'db' } } }], {
        ports: [
          { from: 5432, to: 5432 },
          { from: 5433, to: 5440 },
        ],
      }),
      any: [],
      ports: ['10.244.1.6|sctp|5432-5440', '10.244.1.6|tcp|5432-5440', '10.244.1.6|udp|5432-5440'],
    },
    {
      name: 'protocol udp keeps only udp service ports',
      rule: rule('r', [{ kind: 'namespace', selector: {} }], { protocol: 'udp' }),
      any: [],
      ports: [
        '10.244.1.5|udp|0-65535',
        '10.244.1.6|udp|0-65535',
        '10.244.2.5|udp|0-65535',
        '10.96.0.30|udp|53-53',
      ],
    },
    {
      name: 'icmp: each address on icmp, no service ports',
      rule: rule('r', [{ kind: 'service', namespace: 'team-b', name: 'web' }], { protocol: 'icmp' }),
      any: [],
      ports: ['10.244.2.5|icmp|0-65535'],
    },
    {
      name: 'cidr destination; k8s addresses inside it add nothing (no overlapping elements)',
      rule: rule('r', [
        { kind: 'cidr', cidr: '10.244.1.0/24' },
        { kind: 'cidr', cidr: '10.244.1.0/28' },
        { kind: 'namespace', selector: {} },
      ]),
      any: ['10.244.1.0/24', '10.244.2.5'],
      ports: ['10.96.0.20|tcp|80-80', '10.96.0.30|udp|53-53'],
    },
    {
      name: 'namespace that does not exist: empty sets',
      rule: rule('r', [{ kind: 'namespace', names: ['team-z'] }]),
      any: [],
      ports: [],
    },
    {
      name: 'headless / selector-less Service: no pods, no ClusterIP',
      rule: rule('r', [{ kind: 'service', namespace: 'team-a', name: 'none' }]),
      any: [],
      ports: [],
    },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const c = compiled([t.rule]);
      const s = sets(c, 'r');
      assert.deepEqual(s.any, [...t.any].sort());
      assert.deepEqual(s.ports, [...t.ports].sort());
      assert.deepEqual(s.clients, ['10.140.0.2']);
    });
  }

  it('overlap: two rules and two destinations give the same element; deleting one keeps it', () => {
    const r = rule('r', [
      { kind: 'namespace', names: ['team-a'] },
      { kind: 'pod', namespace: 'team-a', selector: { matchLabels: { app: 'web' } } },
    ]);
    const c = compiled([r, { ...r, name: 'r2' }]);
    const d = c.setRules([{ ...r, destinations: [r.destinations[1]!] }]);
    assert.deepEqual(d.removedRules, [ruleSetId('r2')]);
    // team-a's db pod leaves r; the web pod stays (the pod destination still gives it)
    const a = d.changes.find((x) => x.set === `${ruleSetId('r')}_a`)!;
    assert.deepEqual(a, { set: `${ruleSetId('r')}_a`, kind: 'a', add: [], del: ['10.244.1.6'] });
    assert.deepEqual(sets(c, 'r').any, ['10.244.1.5']);
  });

  it('a reused pod IP: the deleted pod leaves exactly its sets, the new pod enters only its own', () => {
    const ra = rule('ra', [{ kind: 'namespace', names: ['team-a'] }]);
    const rb = rule('rb', [{ kind: 'namespace', names: ['team-b'] }]);
    const c = compiled([ra, rb]);
    const gone = c.apply({ type: 'delete', kind: 'pod', uid: 'a1' });
    assert.deepEqual(gone.changes, [
      { set: `${ruleSetId('ra')}_a`, kind: 'a', add: [], del: ['10.244.1.5'] },
    ]);
    const reused = c.apply(up('pod', pod('b9', 'team-b', '10.244.1.5')));
    assert.deepEqual(reused.changes, [
      { set: `${ruleSetId('rb')}_a`, kind: 'a', add: ['10.244.1.5'], del: [] },
    ]);
    assert.deepEqual(sets(c, 'ra').any, ['10.244.1.6']);
    assert.deepEqual(sets(c, 'rb').any, ['10.244.1.5', '10.244.2.5']);
  });

  it('a new pod with the IP of a pod not yet deleted (events out of order) keeps the element until both go', () => {
    const ra = rule('ra', [{ kind: 'namespace', names: ['team-a'] }]);
    const c = compiled([ra]);
    c.apply(up('pod', pod('a9', 'team-a', '10.244.1.5')));
    assert.deepEqual(c.apply({ type: 'delete', kind: 'pod', uid: 'a1' }).changes, []);
    assert.deepEqual(c.apply({ type: 'delete', kind: 'pod', uid: 'a9' }).changes.length, 1);
  });

  it('namespace relabel moves its pods and ClusterIPs between rules', () => {
    const prod = rule('prod', [{ kind: 'namespace', selector: { matchLabels: { env: 'prod' } } }]);
    const c = compiled([prod]);
    const d = c.apply(up('namespace', ns('team-b', { team: 'b', env: 'dev' })));
    const id = ruleSetId('prod');
    assert.deepEqual(
      d.changes.map((x) => [x.set, x.add, x.del]),
      [
        [`${id}_a`, [], ['10.244.2.5']],
        [`${id}_p`, [], ['10.96.0.30|udp|53-53']],
      ],
    );
  });

  it('service selector change: pods behind it follow, the ClusterIP stays', () => {
    const r = rule('r', [{ kind: 'service', namespace: 'team-a', name: 'web' }]);
    const c = compiled([r]);
    const d = c.apply(up('service', svc('team-a', 'web', '10.96.0.20', { app: 'db' })));
    assert.deepEqual(
      d.changes.map((x) => [x.add, x.del]),
      [[['10.244.1.6'], ['10.244.1.5']]],
    );
  });

  it('pod relabel leaves a pod-selector rule; namespace deletion empties its rules', () => {
    const r = rule('r', [{ kind: 'pod', namespace: 'team-a', selector: { matchLabels: { app: 'web' } } }]);
    const c = compiled([r]);
    assert.equal(
      c.apply(up('pod', pod('a1', 'team-a', '10.244.1.5', { app: 'x' }))).changes[0]!.del[0],
      '10.244.1.5',
    );
    const n = compiled([rule('n', [{ kind: 'namespace', names: ['team-a'] }])]);
    const d = n.apply({ type: 'delete', kind: 'namespace', name: 'team-a' });
    assert.deepEqual(d.changes.flatMap((x) => x.del).sort(), [
      '10.244.1.5',
      '10.244.1.6',
      '10.96.0.20|tcp|80-80',
    ]);
  });

  it('re-list: objects not seen between resync-start and resync-done are removed', () => {
    const c = compiled([rule('r', [{ kind: 'namespace', names: ['team-a'] }])]);
    c.apply({ type: 'resync-start' });
    c.apply(up('namespace', ns('team-a')));
    c.apply(up('pod', pod('a1', 'team-a', '10.244.1.5')));
    const d = c.apply({ type: 'resync-done' });
    assert.deepEqual(d.changes.flatMap((x) => x.del).sort(), ['10.244.1.6', '10.96.0.20|tcp|80-80']);
  });

  it('clients: a rule without clients has an empty client set; a client change is an element change', () => {
    const c = compiled([rule('r', [{ kind: 'cidr', cidr: '192.168.0.0/16' }], { clients: [] })]);
    assert.deepEqual(sets(c, 'r'), { any: ['192.168.0.0/16'], ports: [], clients: [] });
    const d = c.setRules([
      rule('r', [{ kind: 'cidr', cidr: '192.168.0.0/16' }], { clients: ['10.140.0.9'] }),
    ]);
    assert.deepEqual(d.changes, [{ set: `${ruleSetId('r')}_c`, kind: 'c', add: ['10.140.0.9'], del: [] }]);
  });

  it('a bad CIDR fails before anything changes', () => {
    const c = compiled([rule('r', [{ kind: 'namespace', names: ['team-a'] }])]);
    assert.throws(() => c.setRules([rule('r', [{ kind: 'cidr', cidr: '10.0.0.1/8' }])]), /host bits/);
    assert.deepEqual(sets(c, 'r').any, ['10.244.1.5', '10.244.1.6']);
  });

  it('mergeDeltas cancels an add followed by a delete of the same element', () => {
    const d = (add: string[], del: string[]): CompileDelta => ({
      addedRules: [],
      removedRules: [],
      changes: [{ set: 'x_a', kind: 'a', add, del }],
    });
    assert.deepEqual(mergeDeltas([d(['1.1.1.1'], []), d([], ['1.1.1.1']), d(['2.2.2.2'], [])]).changes, [
      { set: 'x_a', kind: 'a', add: ['2.2.2.2'], del: [] },
    ]);
  });
});
