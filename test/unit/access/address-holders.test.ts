import assert from 'node:assert/strict';
import { AddressHolders } from '../../../src/access/address-holders.js';
import type { ClusterEvent } from '../../../src/access/types.js';

const pod = (uid: string, ...ips: string[]): ClusterEvent => ({
  type: 'upsert',
  kind: 'pod',
  object: { uid, namespace: 'team-a', name: uid, labels: {}, ips },
});

describe('access/address-holders', () => {
  it('an address another pod held is taken over; first sight and the same pod again are not', () => {
    const h = new AddressHolders();
    assert.deepEqual(h.take(pod('a1', '10.244.1.9', 'fd00::9')), [], 'first sight');
    assert.deepEqual(h.take(pod('a1', '10.244.1.9', 'fd00::9')), [], 'the same pod again');
    assert.deepEqual(h.take({ type: 'delete', kind: 'pod', uid: 'a1' }), []);
    assert.deepEqual(h.take(pod('b1', '10.244.1.9')), ['10.244.1.9'], 'after the holder is gone');
    assert.deepEqual(h.take(pod('b1', '10.244.1.9')), []);
  });

  it('a new pod with the address while the old one still shows it (its deletion not seen yet) takes it over', () => {
    const h = new AddressHolders();
    h.take(pod('a1', '10.244.1.9'));
    assert.deepEqual(h.take(pod('b1', '10.244.1.9')), ['10.244.1.9']);
    // the old pod's late update (its status still listing the address) makes it the holder again
    assert.deepEqual(h.take(pod('a1', '10.244.1.9')), ['10.244.1.9']);
  });

  it('a pod without addresses yet, and other kinds of events, give nothing', () => {
    const h = new AddressHolders();
    assert.deepEqual(h.take(pod('a1')), []);
    assert.deepEqual(h.take({ type: 'resync-start' }), []);
    assert.deepEqual(h.take({ type: 'upsert', kind: 'namespace', object: { name: 'x', labels: {} } }), []);
  });
});
