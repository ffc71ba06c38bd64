/**
 * shell-quote: hostile arguments survive a real `sh -c` (dash) and bash word for word; NUL is refused.
 */
import assert from 'node:assert/strict';
import { exec } from '../../../src/lib/exec.js';
import { quoteArg, shellJoin } from '../../../src/gateway/shell-quote.js';
import { HOSTILE } from './hostile-args.js';

/** Runs argv through `shell -c` and returns the words the shell passed to printf. */
async function throughShell(shell: string, argv: readonly string[]): Promise<string[]> {
  const r = await exec([shell, '-c', shellJoin(['printf', '%s\\0', ...argv])]);
  const words = r.stdout.split('\0');
  words.pop();
  return words;
}

describe('unit: gateway/shell-quote', () => {
  for (const shell of ['sh', 'bash']) {
    it(`every hostile argument arrives intact through a real ${shell} -c`, async () => {
      assert.deepEqual(await throughShell(shell, HOSTILE), HOSTILE);
    });
    it(`each argument alone stays one word in ${shell}`, async () => {
      for (const a of HOSTILE) assert.deepEqual(await throughShell(shell, [a]), [a], JSON.stringify(a));
    });
  }

  it('refuses a NUL byte', () => {
    assert.throws(() => quoteArg('a\0b'), /NUL/);
    assert.throws(() => shellJoin(['echo', 'x\0']), /NUL/);
  });

  it('refuses an empty command', () => {
    assert.throws(() => shellJoin([]), /empty command/);
  });

  it('leaves plain words readable and quotes the rest', () => {
    assert.equal(
      shellJoin(['iptables', '-t', 'nat', '-C', 'POSTROUTING', '-s', '192.168.1.0/24']),
      'iptables -t nat -C POSTROUTING -s 192.168.1.0/24',
    );
    assert.equal(quoteArg("it's"), `'it'\\''s'`);
    assert.equal(quoteArg(''), `''`);
    assert.equal(quoteArg('*'), `'*'`);
    assert.equal(quoteArg('~'), `'~'`);
  });

  it('a command substitution is not run', async () => {
    const r = await exec(['sh', '-c', shellJoin(['echo', '$(echo INJECTED)', '`echo INJECTED`'])]);
    assert.equal(r.stdout, '$(echo INJECTED) `echo INJECTED`\n');
  });
});
