/**
 * A backup taken while another process keeps issuing and revoking (test/helpers/torture-worker.ts, the
 * real services on the same SQLite file) restores to a consistent state: integrity_check ok, every
 * profile acknowledged before the backup started has its row, every certificate row is signed by the
 * CA, and the restored CRL verifies and lists exactly the restored revoked rows.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { loadConfig } from '../../../src/config/load.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { createBackup, restoreBackup } from '../../../src/services/backup.js';
import { testContext } from '../../helpers/context.js';

const WORKER = fileURLToPath(new URL('../../helpers/torture-worker.js', import.meta.url));
const PASS = 'concurrent backup passphrase';
const norm = (s: string) => s.toUpperCase().replace(/^0+/, '');

describe('backup under concurrent issuing restores consistently', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-bk-conc-'));
    const ctx = await testContext(dir);
    await ctx.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('5 backups during issue/revoke/publish by another process: each restores consistent', async () => {
    const child = spawn(process.execPath, [WORKER, dir, '4242'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: string[] = [];
    let buf = '';
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    child.stdout.on('data', (b: Buffer) => {
      buf += b.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (l === 'ready') ready();
        if (l.startsWith('issued ')) acked.push(norm(l.slice(7)));
      }
    });
    const config = loadConfig({ env: {}, overrides: { dataDir: join(dir, 'restored') } });
    const caCertPem = readFileSync(join(dir, 'data', 'ca.crt'), 'utf8');
    const caKey = createPublicKey(caCertPem);
    try {
      await isReady;
      for (let i = 0; i < 5; i++) {
        // let the writer make progress first (slow on a loaded machine): each backup sees new issues
        const want = acked.length + 2;
        for (let waited = 0; acked.length < want && waited < 60_000; waited += 50)
          await new Promise((r) => setTimeout(r, 50));
        const ackedBefore = [...acked];
        const made = await createBackup({
          dataDir: join(dir, 'data'),
          passphrase: PASS,
          exclude: [join(dir, 'backups')],
        });
        const target = join(dir, `restored-${i}`);
        await restoreBackup({ file: made.data, passphrase: PASS, dataDir: target, config, actor: 'test' });
        const db = new Database(join(target, 'podgate.db'), { readonly: true });
        try {
          assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
          const rows = db.prepare('SELECT serial, status, cert_pem AS pem FROM certificates').all() as {
            serial: string;
            status: string;
            pem: string;
          }[];
          const serials = new Set(rows.map((r) => norm(r.serial)));
          for (const s of ackedBefore) assert.ok(serials.has(s), `acknowledged ${s} is in backup ${i}`);
          for (const r of rows)
            assert.ok(new X509Certificate(r.pem).verify(caKey), `${r.serial} is signed by the CA`);
          const revoked = rows
            .filter((r) => r.status === 'revoked')
            .map((r) => norm(r.serial))
            .sort();
          const pem = db.prepare('SELECT pem FROM crl_state WHERE id = 1').pluck().get() as string;
          assert.deepEqual(verifyCrl(pem, caCertPem).revokedSerials.map(norm).sort(), revoked);
          assert.ok(rows.length > 0);
          console.log(
            `      backup ${i}: ${rows.length} certificates, ${revoked.length} revoked, ${ackedBefore.length} acknowledged before it`,
          );
        } finally {
          db.close();
        }
      }
      assert.ok(acked.length > 0, 'the writer issued while the backups ran');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
