/**
 * DataDirCaSet: how a long-running process follows `ca rotate` / `ca retire-old` made by another one
 * (real CA files in a data dir, written by the real rotation code).
 */
import assert from 'node:assert/strict';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rotateCa, retireOldCa } from '../../../src/services/ca-rotation.js';
import type { AppContext } from '../../../src/services/context.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';

describe('CaSet: the CAs of a data dir, reloaded when another process changes them', function () {
  this.timeout(60_000);
  let t: ReturnType<typeof tempDir>;
  let running: AppContext; // the long-running process (serve, server run)
  const other = async <T>(fn: (c: AppContext) => Promise<T> | T): Promise<T> => {
    const c = await testContext(t.dir); // the CLI
    try {
      return await fn(c);
    } finally {
      await c.close();
    }
  };

  beforeEach(async () => {
    t = tempDir();
    running = await testContext(t.dir);
  });
  afterEach(async () => {
    await running.close();
    t.cleanup();
  });

  it('unchanged files: no reload; rotate: new current + previous, version up once; retire-old: previous gone', async () => {
    const first = running.ca.keyId;
    assert.equal(running.cas.refresh(), false);
    await other((c) => rotateCa(c, { actor: 'test' }));
    assert.equal(running.ca.keyId, first, 'nothing is read before refresh');
    assert.equal(running.cas.refresh(), true);
    assert.equal(running.cas.version, 1);
    assert.notEqual(running.ca.keyId, first);
    assert.equal(running.previousCa?.keyId, first);
    assert.equal(running.cas.refresh(), false);
    await other((c) => retireOldCa(c, 'test'));
    assert.equal(running.cas.refresh(), true);
    assert.equal(running.cas.version, 2);
    assert.equal(running.previousCa, undefined);
  });

  it('a rotation caught mid-way (ca-next.* present, or a key that does not match its certificate) keeps the set in force', async () => {
    const dataDir = running.dataDir;
    const first = running.ca.keyId;
    // The rotating process has written ca-next.* but not renamed them yet.
    await other(async (c) => {
      await rotateCa(c, { actor: 'test' });
    });
    renameSync(join(dataDir, 'ca.crt'), join(dataDir, 'ca-next.crt'));
    copyFileSync(join(dataDir, 'ca-previous.crt'), join(dataDir, 'ca.crt'));
    assert.equal(running.cas.refresh(), false, 'ca-next.crt present: not read');
    assert.equal(running.ca.keyId, first);
    // Half renamed: ca.key.enc is the new key, ca.crt still the old certificate.
    renameSync(join(dataDir, 'ca-next.crt'), join(dataDir, 'ca-new.crt.aside'));
    assert.equal(running.cas.refresh(), false, 'key and certificate do not match: not taken');
    assert.equal(running.ca.keyId, first);
    // Finished: taken on the next refresh.
    renameSync(join(dataDir, 'ca-new.crt.aside'), join(dataDir, 'ca.crt'));
    assert.equal(running.cas.refresh(), true);
    assert.notEqual(running.ca.keyId, first);
    writeFileSync(join(dataDir, 'unrelated'), 'x');
    assert.equal(running.cas.refresh(), false);
  });
});
