import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCrlPublisher, publishedCrlNumber } from '../../../src/openvpn/local-publisher.js';
import type { RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';

const bundle = (n: number): RevocationBundle => ({
  crlNumber: n,
  crlPem: `-----BEGIN X509 CRL-----\nnumber ${n}\n-----END X509 CRL-----\n`,
  revoked: [],
  reissuedCommonNames: [],
});

describe('LocalCrlPublisher', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'podgate-pub-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('two writers finishing out of order: the older bundle does not replace the newer one', async () => {
    const p = new LocalCrlPublisher(dir);
    await p.publish(bundle(8)); // the writer that read the store after the other's revocation
    await p.publish(bundle(7)); // the writer that read it before, finishing last
    assert.equal(publishedCrlNumber(dir), 8);
    assert.match(readFileSync(join(dir, 'crl.pem'), 'utf8'), /number 8/);
  });

  it('newer and equal numbers are written (a republish repairs a half-written pair)', async () => {
    const p = new LocalCrlPublisher(dir);
    assert.equal(publishedCrlNumber(dir), undefined);
    await p.publish(bundle(3));
    await p.publish(bundle(4));
    assert.equal(publishedCrlNumber(dir), 4);
    await p.publish({ ...bundle(4), crlPem: '-----BEGIN X509 CRL-----\nagain\n-----END X509 CRL-----\n' });
    assert.match(readFileSync(join(dir, 'crl.pem'), 'utf8'), /again/);
  });
});
