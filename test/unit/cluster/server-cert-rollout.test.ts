import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTemplate } from '../../../src/lib/templates.js';
import { buildManifests, type ManifestInput } from '../../../src/cluster/manifests.js';
import type { KubeObject } from '../../../src/cluster/kube-api.js';
import { CHECKSUM_ANNOTATION } from '../../../src/cluster/pod-layout.js';
import { rotateCa } from '../../../src/services/ca-rotation.js';
import type { AppContext } from '../../../src/services/context.js';
import { testContext } from '../../helpers/context.js';

type Obj = KubeObject & { spec?: any; data?: Record<string, string> }; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Cluster mode: a renewed server certificate or a rotated CA changes the server Secret and the pod
 * template's checksum annotation, which is what makes `k8s deploy` roll the pod (the roll itself on a
 * checksum change is proven against the API in test/integration/cluster/deploy.test.ts).
 */
describe('cluster manifests follow a renewed server certificate and a CA rotation', function () {
  this.timeout(60_000);
  let dir: string;
  let ctx: AppContext;

  const manifests = async (c: AppContext): Promise<Obj[]> => {
    const input: ManifestInput = {
      config: c.config,
      server: await c.server.ensure(),
      bundle: await c.revocation.bundle(),
      network: {
        podCidrs: ['10.244.0.0/16'],
        serviceCidrs: ['10.96.0.0/12'],
        extraRoutes: [],
        dnsServers: [],
        dnsDomain: 'cluster.local',
        searchDomains: [],
      },
      serverConfTemplate: loadTemplate('server.conf.hbs'),
    };
    return buildManifests(input) as Obj[];
  };
  const checksum = (objs: Obj[]) =>
    objs.find((o) => o.kind === 'Deployment')!.spec.template.metadata.annotations[
      CHECKSUM_ANNOTATION
    ] as string;
  const serverSecret = (objs: Obj[]) =>
    objs.find((o) => o.kind === 'Secret' && Object.keys(o.data ?? {}).some((k) => k.endsWith('.crt')))!.data!;
  const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-rollout-'));
    ctx = await testContext(dir);
  });
  after(async () => {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('renewal near expiry: new server certificate in the Secret, new checksum (the pod rolls)', async () => {
    const before = await manifests(ctx);
    assert.equal(checksum(await manifests(ctx)), checksum(before), 'nothing changed: same checksum');
    const stored = JSON.parse((await ctx.store.getSetting('server.identity'))!) as Record<string, string>;
    stored.notAfter = new Date(Date.now() + 10 * 86_400_000).toISOString();
    await ctx.store.setSetting('server.identity', JSON.stringify(stored));
    const after = await manifests(ctx);
    assert.notEqual(checksum(after), checksum(before));
    const certKey = Object.keys(serverSecret(after)).find((k) => /server.*\.crt$/.test(k))!;
    const oldCert = new X509Certificate(decode(serverSecret(before)[certKey]!));
    const newCert = new X509Certificate(decode(serverSecret(after)[certKey]!));
    assert.notEqual(newCert.serialNumber, oldCert.serialNumber);
    assert.equal(
      (await ctx.store.getCert(oldCert.serialNumber.toUpperCase()))?.revocationReason,
      'superseded',
    );
  });

  it('CA rotation: the Secret trusts both CAs and the checksum changes', async () => {
    const before = await manifests(ctx);
    await rotateCa(ctx, { actor: 'test' });
    await ctx.close();
    ctx = await testContext(dir);
    const after = await manifests(ctx);
    assert.notEqual(checksum(after), checksum(before));
    const caKey = Object.keys(serverSecret(after)).find((k) => /^ca.*\.crt$/.test(k))!;
    assert.equal((decode(serverSecret(after)[caKey]!).match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  });
});
