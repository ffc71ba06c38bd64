/**
 * In-process caches with two writers on one store: two contexts (two `serve` replicas on one PostgreSQL,
 * or `serve` and the CLI on one SQLite data dir) each keep their own copy of what they computed last.
 * A copy is only usable when what it was keyed on proves it is still current, whichever process wrote.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rotateCa } from '../../../src/services/ca-rotation.js';
import type { AppContext } from '../../../src/services/context.js';
import { tempDir } from '../../helpers/cli.js';
import { testContext } from '../../helpers/context.js';
import { sharedPostgres } from '../../helpers/pg-store.js';

const hex = (serial: string) => serial.toUpperCase().replace(/^0+/, '');

/** The serials (upper-case hex, no leading zeros) the CRL PEM lists. */
function crlSerials(pem: string): string[] {
  const text = execFileSync('openssl', ['crl', '-noout', '-text'], { input: pem, encoding: 'utf8' });
  return [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => hex(m[1]!)).sort();
}

type Engine = 'postgres' | 'sqlite';

/** Opens a context on the test's store; `name` picks the data dir (PostgreSQL: one per replica). */
type Opener = (name: string) => Promise<AppContext>;

async function opener(engine: Engine, dir: string): Promise<Opener> {
  // SQLite: serve and the CLI on one data dir
  if (engine === 'sqlite') return () => testContext(dir);
  const pg = await sharedPostgres();
  const database = await pg.createDatabase('caches');
  writeFileSync(join(dir, 'ca-passphrase'), 'two-writers-share-this-passphrase\n', { mode: 0o600 });
  const overrides = (name: string) => ({
    dataDir: join(dir, name, 'data'),
    'store.url': pg.url(database),
    'store.passwordFile': pg.passwordFile,
    'ca.passphraseFile': join(dir, 'ca-passphrase'),
  });
  return (name) => testContext(join(dir, name), overrides(name));
}

for (const engine of ['postgres', 'sqlite'] as const) {
  describe(`services (${engine}): in-process caches with two writers on one store`, function () {
    this.timeout(120_000);
    let t: { dir: string; cleanup: () => void };
    let open: Opener;
    let a: AppContext | undefined;
    let b: AppContext | undefined;
    beforeEach(async () => {
      t = tempDir();
      open = await opener(engine, t.dir);
      a = await open('a');
      b = await open('b');
    });
    afterEach(async () => {
      await a?.close();
      await b?.close();
      a = b = undefined;
      t.cleanup();
    });

    it('a rolled-back revocation does not leave a CRL cache that a later CRL of the same number matches', async () => {
      await a!.users.create({ actor: 'test', name: 'alice', role: 'user' });
      const issue = async (name: string) =>
        (await a!.devices.issue({ actor: 'test', owner: 'alice', commonName: name, keyType: 'ec-p256' })).cert
          .serial;
      const [rolledBack, fromB, fromA] = [
        await issue('alice-1'),
        await issue('alice-2'),
        await issue('alice-3'),
      ];
      const before = (await a!.store.getCrl())!.number;

      // A revokes inside a caller's transaction that then fails (as a user disable or a server
      // re-issue does): the savepoint and the whole transaction roll back, CRL number `before + 1` too.
      await assert.rejects(
        a!.store.transaction(async (tx) => {
          await a!.revocation.revokeInTransaction('test', [rolledBack], 'keyCompromise', tx);
          throw new Error('the caller failed after the revocation');
        }),
        /the caller failed/,
      );
      assert.equal((await a!.store.getCrl())!.number, before, 'nothing of the failed transaction stayed');

      // The other writer revokes: its CRL is number `before + 1` as well, with other contents.
      const byB = await b!.revocation.revoke({ actor: 'test', serialOrName: fromB, reason: 'keyCompromise' });
      assert.equal(byB.crl.number, before + 1);
      assert.deepEqual(crlSerials(byB.crl.pem), [hex(fromB)]);

      // A revokes again: its CRL must build on what B committed, not on what A rolled back.
      const byA = await a!.revocation.revoke({ actor: 'test', serialOrName: fromA, reason: 'keyCompromise' });
      assert.equal(byA.crl.number, before + 2);
      assert.deepEqual(crlSerials(byA.crl.pem), [hex(fromB), hex(fromA)].sort());
      const bundle = await a!.revocation.bundle();
      assert.deepEqual(bundle.revoked.map((r) => r.serial).sort(), [fromA, fromB].sort());
      assert.equal((await a!.store.getCert(rolledBack))!.status, 'valid');
    });

    it('a CA rotated by another process: the running one issues from the new CA and revokes in its CRL', async () => {
      await a!.users.create({ actor: 'test', name: 'bob', role: 'user' });
      const oldKeyId = b!.ca.keyId;
      // `podgate ca rotate` in a process of its own (on PostgreSQL: another replica's pod)
      const cli = await open('cli');
      let rotated: { keyId: string };
      try {
        rotated = await rotateCa(cli, { actor: 'cli' });
      } finally {
        await cli.close(); // on PostgreSQL the changed CA files go to the database here
      }
      assert.notEqual(rotated.keyId, oldKeyId);

      // B has been running all along: its next issue comes from the new CA...
      const issued = await b!.devices.issue({
        actor: 'test',
        owner: 'bob',
        commonName: 'bob-1',
        keyType: 'ec-p256',
      });
      assert.equal(issued.cert.issuerKeyId, rotated.keyId, 'issued by the CA in force');
      assert.equal(b!.ca.keyId, rotated.keyId);
      assert.equal(b!.previousCa?.keyId, oldKeyId);

      // ...and revoking it puts it in a CRL the new CA signed (openvpn ignores a CRL of another issuer)
      const { crl } = await b!.revocation.revoke({
        actor: 'test',
        serialOrName: issued.cert.serial,
        reason: 'keyCompromise',
      });
      const dir = join(t.dir, 'check');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'new-ca.pem'), b!.ca.certPem);
      writeFileSync(join(dir, 'crl.pem'), crl.pem);
      const text = execFileSync(
        'openssl',
        [
          'crl',
          '-in',
          join(dir, 'crl.pem'),
          '-CAfile',
          join(dir, 'new-ca.pem'),
          '-verify',
          '-noout',
          '-text',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      assert.ok(
        text.includes(`Serial Number: ${hex(issued.cert.serial)}`) ||
          crlSerials(crl.pem).includes(hex(issued.cert.serial)),
      );
      assert.ok(crlSerials(crl.pem).includes(hex(issued.cert.serial)), 'the revoked serial is in the CRL');
      assert.match(text, new RegExp(`Issuer: .*${escape(b!.ca.commonName)}`), 'the new CA signed a CRL');
    });
  });
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
