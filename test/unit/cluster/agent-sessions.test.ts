import assert from 'node:assert/strict';
import { parseReadings, toReading } from '../../../src/cluster/agent-sessions.js';
import { setLogLevel, logger } from '../../../src/lib/logger.js';

describe('agent session readings (ConfigMap keys)', () => {
  let level: string;
  before(() => {
    level = logger.level;
    setLogLevel('silent');
  });
  after(() => setLogLevel(level));

  const good = toReading(
    [
      {
        clientId: 5,
        commonName: 'alice.laptop',
        realAddress: '172.18.12.100:5000',
        virtualAddress: '10.140.0.9',
        virtualIpv6Address: '',
        bytesReceived: 10,
        bytesSent: 20,
        connectedSince: new Date('2026-12-06T05:00:00Z'),
        username: '',
        peerId: 0,
        cipher: 'AES-256-GCM',
      },
    ],
    new Date('2026-12-06T05:01:00Z'),
    60_000,
  );

  it('reads the sessions.<pod> keys and leaves the agent status keys alone', () => {
    const m = parseReadings({
      'sessions.podgate-openvpn-a': JSON.stringify(good),
      lastAppliedCrlNumber: '4',
      pending: '[]',
    });
    assert.deepEqual([...m.keys()], ['podgate-openvpn-a']);
    assert.deepEqual(m.get('podgate-openvpn-a'), good);
  });

  it('a reading that is not JSON or has the wrong shape is left out (the others still count)', () => {
    const bad = { ...good, clients: [{ ...good.clients[0]!, bytesIn: 'many' }] };
    const m = parseReadings({
      'sessions.a': '{not json',
      'sessions.b': JSON.stringify(bad),
      'sessions.c': JSON.stringify({ ...good, at: 'yesterday' }),
      'sessions.d': JSON.stringify(good),
    });
    assert.deepEqual([...m.keys()], ['d']);
  });
});
