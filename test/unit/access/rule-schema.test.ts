import assert from 'node:assert/strict';
import { AppError } from '../../../src/lib/errors.js';
import { fieldPath, parseRulesDocument } from '../../../src/access/rule-schema.js';

const good = () => ({
  name: 'team-a',
  subjects: [{ kind: 'group', name: 'a' }],
  destinations: [{ kind: 'namespace', names: ['team-a'] }],
});

/** The document with rules[2] replaced by `bad` (two good rules before it, so the index is checked). */
function docWith(bad: Record<string, unknown>) {
  return { rules: [{ ...good(), name: 'r0' }, { ...good(), name: 'r1' }, bad] };
}

function refused(input: unknown): AppError {
  try {
    parseRulesDocument(input);
  } catch (err) {
    assert.ok(err instanceof AppError);
    assert.equal(err.status, 400);
    return err;
  }
  assert.fail('accepted');
}

describe('access: rule validation names the bad field', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['400 rule name breaks the name rule', { ...good(), name: 'Team A' }, 'rules[2].name'],
    [
      '400 user subject name breaks the name rule',
      { ...good(), subjects: [{ kind: 'user', name: 'Bob!' }] },
      'rules[2].subjects[0].name',
    ],
    [
      '400 unknown subject kind',
      { ...good(), subjects: [{ kind: 'robot', name: 'x' }] },
      'rules[2].subjects[0].kind',
    ],
    [
      '400 gateway subject without name',
      { ...good(), subjects: [{ kind: 'gateway' }] },
      'rules[2].subjects[0].name',
    ],
    ['400 no subjects', { ...good(), subjects: [] }, 'rules[2].subjects'],
    ['400 no destinations', { ...good(), destinations: [] }, 'rules[2].destinations'],
    [
      '400 namespace name not a DNS label',
      { ...good(), destinations: [{ kind: 'namespace', names: ['Team_A'] }] },
      'rules[2].destinations[0].names[0]',
    ],
    [
      '400 namespace with both names and selector',
      { ...good(), destinations: [{ kind: 'namespace', names: ['a'], selector: {} }] },
      'rules[2].destinations[0].names',
    ],
    [
      '400 bad label key in matchLabels',
      {
        ...good(),
        destinations: [{ kind: 'pod', namespace: 'a', selector: { matchLabels: { 'bad key': 'x' } } }],
      },
      'rules[2].destinations[0].selector.matchLabels',
    ],
    [
      '400 bad label value',
      {
        ...good(),
        destinations: [{ kind: 'pod', namespace: 'a', selector: { matchLabels: { app: 'has space' } } }],
      },
      'rules[2].destinations[0].selector.matchLabels.app',
    ],
    [
      '400 In without values',
      {
        ...good(),
        destinations: [
          { kind: 'namespace', selector: { matchExpressions: [{ key: 'env', operator: 'In' }] } },
        ],
      },
      'rules[2].destinations[0].selector.matchExpressions[0].values',
    ],
    [
      '400 unknown operator',
      {
        ...good(),
        destinations: [
          {
            kind: 'namespace',
            selector: { matchExpressions: [{ key: 'env', operator: 'Gt', values: ['1'] }] },
          },
        ],
      },
      'rules[2].destinations[0].selector.matchExpressions[0].operator',
    ],
    [
      '400 service without name or selector',
      { ...good(), destinations: [{ kind: 'service', namespace: 'a' }] },
      'rules[2].destinations[0].name',
    ],
    [
      '400 CIDR with host bits',
      { ...good(), destinations: [{ kind: 'cidr', cidr: '10.0.0.1/8' }] },
      'rules[2].destinations[0].cidr',
    ],
    [
      '400 CIDR that is not one',
      { ...good(), destinations: [{ kind: 'cidr', cidr: '10.0.0.0/33' }] },
      'rules[2].destinations[0].cidr',
    ],
    [
      '400 IPv6 CIDR with host bits set',
      { ...good(), destinations: [{ kind: 'cidr', cidr: 'fd00::1/8' }] },
      'rules[2].destinations[0].cidr',
    ],
    ['400 port 0', { ...good(), protocol: 'tcp', ports: [{ from: 0, to: 80 }] }, 'rules[2].ports[0].from'],
    [
      '400 port 65536',
      { ...good(), protocol: 'udp', ports: [{ from: 1, to: 65536 }] },
      'rules[2].ports[0].to',
    ],
    [
      '400 from > to',
      { ...good(), protocol: 'tcp', ports: [{ from: 90, to: 80 }] },
      'rules[2].ports[0].from',
    ],
    ['400 ports with icmp', { ...good(), protocol: 'icmp', ports: [{ from: 1, to: 2 }] }, 'rules[2].ports'],
    ['400 ports without protocol', { ...good(), ports: [{ from: 1, to: 2 }] }, 'rules[2].ports'],
    ['400 unknown protocol', { ...good(), protocol: 'sctp' }, 'rules[2].protocol'],
    ['400 unknown field', { ...good(), priority: 3 }, 'rules[2]'],
    ['400 duplicate rule name', { ...good(), name: 'r0' }, 'rules[2].name'],
  ];
  for (const [title, bad, field] of cases) {
    it(title, () => {
      const err = refused(docWith(bad));
      assert.equal(err.field, field, err.message);
      assert.ok(err.message.startsWith(field), err.message);
    });
  }

  it('400 a document without rules names the field', () => {
    assert.equal(refused({ rule: [] }).field, 'rules');
  });

  it('accepts every destination kind, protocol and ports, and SSO group names with spaces', () => {
    const rules = parseRulesDocument({
      rules: [
        {
          name: 'all-kinds',
          description: 'x',
          subjects: [
            { kind: 'group', name: 'Team A' },
            { kind: 'everyone' },
            { kind: 'gateway', name: 'office' },
          ],
          destinations: [
            { kind: 'namespace', selector: { matchLabels: { 'team.example.com/name': 'a' } } },
            {
              kind: 'service',
              namespace: 'a',
              selector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
            },
            { kind: 'pod', namespace: 'a', selector: {} },
            { kind: 'cidr', cidr: '192.168.0.0/16' },
            { kind: 'cidr', cidr: 'fd00:10:244::/56' },
          ],
          protocol: 'tcp',
          ports: [
            { from: 80, to: 80 },
            { from: 8000, to: 8999 },
          ],
        },
      ],
    });
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.destinations.length, 5);
  });

  it('fieldPath writes indexes in brackets', () => {
    assert.equal(
      fieldPath(['rules', 2, 'destinations', 0, 'selector', 'matchLabels']),
      'rules[2].destinations[0].selector.matchLabels',
    );
  });
});
