/**
 * Publishing the CRL to the podgate-crl Secret on the real API server when publishers finish out of
 * order (web requests, CLI commands and deploy each publish the bundle they read from the store): the
 * Secret never goes back to an older CRL.
 */
import assert from 'node:assert/strict';
import type { KubeApi } from '../../../src/cluster/kube-api.js';
import { applyCrlSecret, SecretCrlPublisher } from '../../../src/cluster/secret-publisher.js';
import { crlSecret } from '../../../src/cluster/manifests.js';
import { AppError } from '../../../src/lib/errors.js';
import { bundleFromSecret } from '../../../src/cluster/secret-watch-source.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import { CertificateAuthority, createCa } from '../../../src/pki/index.js';
import type { RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { adminKubeApi, dropNamespace, freshNamespace, realCluster } from '../../helpers/real-cluster.js';

const bundle = (n: number): RevocationBundle => ({
  crlNumber: n,
  crlPem: `-----BEGIN X509 CRL-----\nnumber ${n}\n-----END X509 CRL-----\n`,
  revoked: [{ serial: `0${n}`, commonName: `device-${n}`, revokedAt: '2026-11-01T00:00:00.000Z' }],
  reissuedCommonNames: [],
});

describe('CRL Secret publishes out of order on the real API server', function () {
  this.timeout(60_000);
  let cp: ControlPlane;
  let ns: string;
  let kube: KubeApi;
  const stored = async () => {
    const s = await kube.get({ apiVersion: 'v1', kind: 'Secret', name: 'podgate-crl', namespace: ns });
    return bundleFromSecret(s!)!.crlNumber;
  };

  before(async function () {
    this.timeout(180_000);
    setLogLevel(process.env.PODGATE_LOG_LEVEL ?? 'silent');
    cp = await realCluster();
  });
  beforeEach(async () => {
    ns = await freshNamespace(cp, 'crlorder');
    kube = adminKubeApi(cp);
  });
  afterEach(async () => dropNamespace(cp, ns));

  it('an older CRL published after a newer one leaves the newer in the Secret', async () => {
    await new SecretCrlPublisher(kube, ns).publish(bundle(2));
    await new SecretCrlPublisher(kube, ns).publish(bundle(3));
    // the slow publisher of the earlier revocation: refused (its caller, RevocationService, sees that its
    // store has reached CRL 3 and takes it for the race it is)
    await assert.rejects(new SecretCrlPublisher(kube, ns).publish(bundle(2)), /holds #3/);
    assert.equal(await stored(), 3);
    // the same number again is written (the bundle's re-issued names can change without a new CRL)
    const again = { ...bundle(3), reissuedCommonNames: ['device-3'] };
    await new SecretCrlPublisher(kube, ns).publish(again);
    const s = await kube.get({ apiVersion: 'v1', kind: 'Secret', name: 'podgate-crl', namespace: ns });
    assert.deepEqual(bundleFromSecret(s!)!.reissuedCommonNames, ['device-3']);
  });

  it("a CRL of another CA is refused (409 naming podgate.io/ca-key-id) unless taken over; then it replaces the Secret's whatever its number", async () => {
    // two `podgate init`s make two CAs of one name: only the key (authority key id) tells them apart
    const realCrl = async (number: number) => {
      const ca = CertificateAuthority.load(
        await createCa({ commonName: 'podgate CA', keyType: 'ec-p384', days: 30 }),
      );
      return ca.buildCrl({ number, entries: [], nextUpdateDays: 7 });
    };
    const first = { ...bundle(6), crlPem: await realCrl(6) };
    const second = { ...bundle(1), crlPem: await realCrl(1) };
    await new SecretCrlPublisher(kube, ns).publish(first);
    await assert.rejects(
      new SecretCrlPublisher(kube, ns).publish(second),
      (err: unknown) =>
        err instanceof AppError && err.status === 409 && /podgate\.io\/ca-key-id=/.test(err.message),
    );
    assert.equal(await stored(), 6, "the first CA's CRL stays");
    await applyCrlSecret(kube, crlSecret(ns, second), { takeOver: true });
    assert.equal(await stored(), 1, "taken over: the new CA's CRL 1 replaced the old CA's CRL 6");
    // and an older CRL of that same new CA is still refused
    await assert.rejects(
      new SecretCrlPublisher(kube, ns).publish({ ...first, crlPem: second.crlPem, crlNumber: 0 }),
      (err: unknown) => err instanceof AppError && err.code === 'crl_number_behind',
    );
    assert.equal(await stored(), 1);
  });

  it('a publisher that read the Secret before a newer CRL was written gets 409 on its apply and then keeps the newer', async () => {
    await new SecretCrlPublisher(kube, ns).publish(bundle(1));
    // Publisher A reads the Secret (CRL 1); publisher B writes CRL 3 right after that read; then A applies
    // CRL 2 with the resourceVersion it read: the real server refuses it and A sees CRL 3 on its re-read.
    let interleaved = false;
    let reads = 0;
    const slow: KubeApi = {
      ...kube,
      async get(ref) {
        const obj = await kube.get(ref);
        reads++;
        if (!interleaved) {
          interleaved = true;
          await new SecretCrlPublisher(kube, ns).publish(bundle(3));
        }
        return obj;
      },
    };
    await assert.rejects(new SecretCrlPublisher(slow, ns).publish(bundle(2)), /holds #3/);
    assert.equal(interleaved, true, 'publisher A read the Secret before applying');
    assert.equal(reads, 2, 'A read again after the 409');
    assert.equal(await stored(), 3);
  });

  it('eight publishers racing in shuffled order leave the highest CRL', async () => {
    await new SecretCrlPublisher(kube, ns).publish(bundle(1));
    for (let round = 0; round < 3; round++) {
      const base = 10 * (round + 1);
      const numbers = Array.from({ length: 8 }, (_, i) => base + i);
      numbers.sort(() => Math.random() - 0.5);
      // one client each, like separate processes
      // the ones that lose to a higher number are refused with crl_number_behind, nothing else
      await Promise.all(
        numbers.map((n) =>
          new SecretCrlPublisher(adminKubeApi(cp), ns).publish(bundle(n)).catch((err: unknown) => {
            if (!(err instanceof AppError && err.code === 'crl_number_behind')) throw err;
          }),
        ),
      );
      assert.equal(await stored(), base + 7, `round ${round}: order ${numbers.join(',')}`);
    }
  });
});
