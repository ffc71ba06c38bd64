import assert from 'node:assert/strict';
import { isSerial, parseSerial } from '../../../src/lib/serial.js';

describe('lib/serial: one rule for serial numbers', () => {
  const parsed: [string, string][] = [
    ['0A1B', '0A1B'],
    ['0a1b', '0A1B'],
    ['0a:1b', '0A1B'],
    ['0x0A1B', '0A1B'],
    ['a1b', '0A1B'],
    ['00', '00'],
    ['FF'.repeat(20), 'FF'.repeat(20)],
  ];
  for (const [text, stored] of parsed) {
    it(`parses ${text} as ${stored}`, () => assert.equal(parseSerial(text), stored));
  }

  const notSerials = ['', '0x', ':', 'alice.laptop', 'XY', 'FF'.repeat(21), ' AB', 'AB\n', 'A B'];
  for (const text of notSerials) {
    it(`parses ${JSON.stringify(text)} as not a serial`, () => assert.equal(parseSerial(text), undefined));
  }

  it('rejects non-strings', () => {
    for (const v of [undefined, null, 10, ['AB']]) assert.equal(parseSerial(v), undefined);
  });

  it('isSerial: only the stored form (upper-case, even length, 1-20 bytes)', () => {
    for (const ok of ['00', 'AB', '0A1B', 'FF'.repeat(20)]) assert.ok(isSerial(ok), ok);
    for (const bad of ['', 'A', 'ABC', 'ab', 'XY', '0x0A', '0A:1B', 'FF'.repeat(21), ' AB', 'AB\n', 7])
      assert.ok(!isSerial(bad), String(bad));
  });
});
