import assert from 'node:assert/strict';
import { readyAddresses, waitForService, type EndpointSliceList } from '../../cluster/node/service-ready.js';

/** A clock that only moves when the helper sleeps: no real waiting, and the deadline is exact. */
function fakeClock(): { now: () => number; sleep: (ms: number) => Promise<void>; slept: number[] } {
  let t = 0;
  const slept: number[] = [];
  return {
    now: () => t,
    sleep: async (ms) => {
      slept.push(ms);
      t += ms;
    },
    slept,
  };
}

const slice = (
  ready: boolean | undefined | null,
  addresses = ['10.244.1.7'],
  port = 80,
): EndpointSliceList['items'][number] => ({
  endpoints: [{ addresses, ...(ready === undefined ? {} : { conditions: { ready } }) }],
  ports: [{ port }],
});

describe('test helper: waiting for a fresh Service (EndpointSlice ready, then the probe, one deadline)', () => {
  it('ready endpoints: ready true or unset count; ready false and slices without ports do not', () => {
    assert.deepEqual(readyAddresses({ items: [] }), []);
    assert.deepEqual(readyAddresses({ items: [slice(false)] }), []);
    assert.deepEqual(readyAddresses({ items: [slice(true, ['10.244.1.7'])] }), ['10.244.1.7']);
    assert.deepEqual(readyAddresses({ items: [slice(undefined, ['10.244.1.8'])] }), ['10.244.1.8']);
    assert.deepEqual(readyAddresses({ items: [slice(null, ['10.244.1.9'])] }), ['10.244.1.9']);
    assert.deepEqual(
      readyAddresses({ items: [{ endpoints: [{ addresses: ['10.244.1.5'] }], ports: [] }] }),
      [],
    );
    assert.deepEqual(readyAddresses({ items: [{ endpoints: null, ports: [{ port: 80 }] }] }), []);
  });

  it('probes only once an endpoint is ready, retries a probe that fails, returns its answer', async () => {
    const clock = fakeClock();
    const lists: EndpointSliceList[] = [{ items: [] }, { items: [slice(false)] }, { items: [slice(true)] }];
    let sliceReads = 0;
    const probes: string[] = [];
    const answers = [undefined, 'throw', 'ok'];
    const got = await waitForService({
      service: 'podgate/podgate-manager',
      slices: async () => lists[Math.min(sliceReads++, lists.length - 1)]!,
      probe: async () => {
        const a = answers[probes.length];
        probes.push(String(a));
        if (a === 'throw') throw new Error('ECONNREFUSED');
        return a;
      },
      now: clock.now,
      sleep: clock.sleep,
      stepMs: 250,
    });
    assert.equal(got, 'ok');
    assert.equal(sliceReads, 3, 'the slices are read until one is ready, then no more');
    assert.deepEqual(probes, ['undefined', 'throw', 'ok'], 'no probe before the endpoint was ready');
    assert.deepEqual(clock.slept, [250, 250, 250, 250]);
  });

  it('without a probe: the ready addresses', async () => {
    const clock = fakeClock();
    const got = await waitForService({
      service: 'kube-system/kube-dns',
      slices: async () => ({ items: [slice(true, ['10.244.0.3'])] }),
      now: clock.now,
      sleep: clock.sleep,
    });
    assert.deepEqual(got, ['10.244.0.3']);
    assert.deepEqual(clock.slept, []);
  });

  it('past the deadline with no ready endpoint: an error naming the Service and that step', async () => {
    const clock = fakeClock();
    let probed = false;
    await assert.rejects(
      waitForService({
        service: 'default/web',
        slices: async () => ({ items: [slice(false)] }),
        probe: async () => {
          probed = true;
          return 'x';
        },
        deadlineMs: 2000,
        stepMs: 500,
        now: clock.now,
        sleep: clock.sleep,
      }),
      /Service default\/web did not answer within 2000 ms \(5 tries\): no ready endpoint in its EndpointSlices/,
    );
    assert.equal(probed, false);
  });

  it('past the deadline with endpoints ready but a failing probe: the last probe error', async () => {
    const clock = fakeClock();
    await assert.rejects(
      waitForService({
        service: 'podgate/podgate-manager',
        slices: async () => ({ items: [slice(true)] }),
        probe: async () => {
          throw new Error('connect ETIMEDOUT 10.96.0.42:80');
        },
        deadlineMs: 1000,
        stepMs: 500,
        now: clock.now,
        sleep: clock.sleep,
      }),
      /ready endpoints 10\.244\.1\.7, but the probe failed: connect ETIMEDOUT 10\.96\.0\.42:80/,
    );
  });

  it('an unreadable EndpointSlice list (API server busy) is retried, not fatal', async () => {
    const clock = fakeClock();
    let n = 0;
    const got = await waitForService({
      service: 'default/web',
      slices: async () => {
        if (n++ === 0) throw new Error('etcdserver: request timed out');
        return { items: [slice(true)] };
      },
      probe: async () => 'hello from web',
      now: clock.now,
      sleep: clock.sleep,
    });
    assert.equal(got, 'hello from web');
    assert.equal(n, 2);
  });
});
