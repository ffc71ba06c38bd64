/**
 * Issue 21, item 3: in the issuing CA's last 30 days the server certificate is capped at the CA's
 * expiry, so "fewer than 30 days left" held forever and every ensure() issued another one (openvpn
 * restarted hourly in local mode, the pod rolled every 5 minutes in cluster mode, the CRL grew). A
 * certificate that ends with its CA is as good as it gets: it is issued once and kept.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterService } from '../../../src/cluster/index.js';
import type { AppContext } from '../../../src/services/context.js';
import { testContext } from '../../helpers/context.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

describe('server certificate near the issuing CA’s end (issue 21, item 3)', function () {
  this.timeout(60_000);
  let dir: string;
  let ctx: AppContext;
  let t = 0;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-ca-end-'));
    t = Date.now();
    ctx = await testContext(dir, { 'ca.keyType': 'ec-p384' }, { now: () => new Date(t) });
    t = ctx.ca.notAfter.getTime() - 20 * DAY; // the CA's last 20 days
  });
  afterEach(async () => {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('local mode: one certificate capped at the CA’s notAfter, kept by later ensure() calls', async () => {
    const first = await ctx.server.ensure();
    const issued = (await ctx.store.getCert(first.serial))!;
    assert.equal(issued!.notAfter.getTime(), ctx.ca.notAfter.getTime(), 'capped at the CA’s expiry');
    for (let hour = 1; hour <= 48; hour++) {
      t += HOUR;
      assert.equal((await ctx.server.ensure()).serial, first.serial, `hour ${hour}: no new certificate`);
    }
    assert.equal((await ctx.store.listAudit({ action: 'server.cert' })).length, 1);
    assert.equal(
      (await ctx.store.listRevoked()).filter((c) => c.commonName === ctx.config.vpn.serverName).length,
      0,
      'nothing superseded: the CRL does not grow',
    );
  });

  it('cluster mode: the podgate-server Secret built every 5 minutes stays the same (no roll)', async () => {
    const cluster = new ClusterService({
      config: ctx.config,
      store: ctx.store,
      server: ctx.server,
      revocation: ctx.revocation,
      kube: () => {
        throw new Error('no API server in this test');
      },
    });
    const secretData = async () =>
      (
        (await cluster.objects()).find(
          (o) => o.kind === 'Secret' && o.metadata.name === 'podgate-server',
        ) as unknown as { data: Record<string, string> }
      ).data['server.crt'];
    const first = await secretData();
    for (let i = 1; i <= 12; i++) {
      t += 5 * 60_000;
      assert.equal(await secretData(), first, `sync ${i}: the Secret would change and the pod roll`);
    }
    assert.equal((await ctx.store.listAudit({ action: 'server.cert' })).length, 1);
  });
});
