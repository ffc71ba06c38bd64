import assert from 'node:assert/strict';
import {
  fromPem,
  integerContentToSerialHex,
  readRoot,
  serialHexToIntegerHex,
  toPem,
} from '../../../src/pki/der.js';

describe('pki DER helpers: serial encoding both ways', () => {
  const cases: [string, string, string][] = [
    // input serial, DER INTEGER content, what openssl prints
    ['01', '01', '01'],
    ['7F', '7F', '7F'],
    ['80', '0080', '80'],
    ['ff01', '00FF01', 'FF01'],
    ['000001', '01', '01'],
    ['0080', '0080', '80'],
    ['00', '00', '00'],
  ];
  for (const [input, content, printed] of cases) {
    it(`${input} -> INTEGER ${content} -> prints ${printed}`, () => {
      assert.equal(serialHexToIntegerHex(input), content);
      assert.equal(integerContentToSerialHex(Buffer.from(content, 'hex')), printed);
    });
  }

  it('PEM round trip keeps the bytes; a wrong label or trailing DER bytes are refused', () => {
    const der = Buffer.from('3003020105ff', 'hex');
    assert.throws(() => readRoot(der), /trailing/);
    const good = Buffer.from('3003020105', 'hex');
    assert.ok(fromPem(toPem('X509 CRL', good), ['X509 CRL']).equals(good));
    assert.throws(() => fromPem(toPem('CERTIFICATE', good), ['X509 CRL']), /X509 CRL/);
  });
});
