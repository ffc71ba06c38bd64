/**
 * The podgate-crl Secret against the real API server's 1 MiB limit, with real CRLs made by `openssl ca
 * -gencrl` (EC P-384 CA, 16-byte serials, reason keyCompromise). Measured here: ~49.5 bytes per entry in
 * DER, ~67 in PEM; 20,000 unexpired revocations are 1.34 MB of PEM alone, so they cannot fit one Secret:
 * podgate refuses before sending anything (expired certificates leaving the CRL keeps real CRLs short).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { bundleFromSecret } from '../../../src/cluster/secret-watch-source.js';
import type { RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import {
  adminKubeApi,
  adminRest,
  dropNamespace,
  freshNamespace,
  realCluster,
  tempDir,
} from '../../helpers/real-cluster.js';

/** A real CRL with `n` revoked entries and the matching bundle. */
function bundleOf(n: number, dir: string): RevocationBundle {
  const cnf =
    '[req]\ndistinguished_name=dn\n[dn]\n[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\ndefault_crl_days=7\nprivate_key=ca.key\ncertificate=ca.crt\n';
  writeFileSync(join(dir, 'ca.cnf'), cnf);
  const env = { ...process.env, OPENSSL_CONF: join(dir, 'ca.cnf') };
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=podgate CA', '-days', '30'], { cwd: dir, env, stdio: 'ignore' }); // prettier-ignore
  writeFileSync(join(dir, 'crlnumber'), '07\n');
  const revoked = Array.from({ length: n }, (_, i) => ({
    serial: randomBytes(16)
      .toString('hex')
      .toUpperCase()
      .replace(/^[89A-F]/, '1'),
    commonName: `device-${i}.laptop`,
    revokedAt: '2026-11-01T00:00:00.000Z',
  }));
  writeFileSync(
    join(dir, 'index.txt'),
    revoked
      .map(
        (r) => `R\t361231000000Z\t261101000000Z,keyCompromise\t${r.serial}\tunknown\t/CN=${r.commonName}\n`,
      )
      .join(''),
  );
  execFileSync('openssl', ['ca', '-gencrl', '-config', 'ca.cnf', '-out', 'crl.pem', '-batch'], {
    cwd: dir,
    env,
    stdio: 'ignore',
  });
  return {
    crlNumber: 7,
    crlPem: readFileSync(join(dir, 'crl.pem'), 'utf8'),
    revoked,
    reissuedCommonNames: [],
  };
}

describe('podgate-crl Secret size on the real API server', function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let ns: string;
  let tmp: ReturnType<typeof tempDir>;
  before(async function () {
    this.timeout(180_000);
    cp = await realCluster();
  });
  beforeEach(async () => {
    ns = await freshNamespace(cp, 'crl-size');
    tmp = tempDir('podgate-crl-size-');
  });
  afterEach(async () => {
    tmp.remove();
    await dropNamespace(cp, ns);
  });

  it('4,500 revocations (the CRL stored once) publish, and the agent reads the same bundle back', async () => {
    const bundle = bundleOf(4500, tmp.dir);
    await new SecretCrlPublisher(adminKubeApi(cp), ns).publish(bundle);
    const res = await adminRest<{ data: Record<string, string> }>(
      cp,
      'GET',
      `/api/v1/namespaces/${ns}/secrets/podgate-crl`,
    );
    assert.equal(res.status, 200);
    const back = bundleFromSecret({ apiVersion: 'v1', kind: 'Secret', metadata: {}, data: res.body.data });
    assert.deepEqual(back, bundle);
    const crlOut = execFileSync('openssl', ['crl', '-noout', '-text'], {
      input: back!.crlPem,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    assert.equal(crlOut.match(/Serial Number:/g)?.length, 4500);
  });

  it('20,000 revocations: podgate refuses with the size before sending anything; the stored Secret is unchanged', async () => {
    const publisher = new SecretCrlPublisher(adminKubeApi(cp), ns);
    const small = bundleOf(3, tmp.dir);
    await publisher.publish(small);
    const big = bundleOf(20000, tmp.dir);
    assert.ok(
      Buffer.byteLength(big.crlPem) > 1_300_000,
      `20,000 entries: ${Buffer.byteLength(big.crlPem)} bytes of PEM`,
    );
    await assert.rejects(publisher.publish(big), (err: Error & { status?: number }) => {
      assert.equal(err.status, 413);
      assert.match(
        err.message,
        /podgate-crl Secret would hold \d+ bytes for 20000 revocations .*over podgate's 921600-byte limit below Kubernetes' 1 MiB per Secret; nothing was published/,
      );
      return true;
    });
    const res = await adminRest<{ data: Record<string, string> }>(
      cp,
      'GET',
      `/api/v1/namespaces/${ns}/secrets/podgate-crl`,
    );
    assert.equal(
      bundleFromSecret({ apiVersion: 'v1', kind: 'Secret', metadata: {}, data: res.body.data })!.revoked
        .length,
      3,
    );
  });
});
