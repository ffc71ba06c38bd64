/**
 * Read-only lists open their context without reading the CA (src/services/context.ts `readOnly`): they
 * work while the CA key cannot be decrypted, and every command that changes something still reads the CA
 * first, so a wrong secret stops it before anything changes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../../helpers/cli.js';

describe('CLI: read-only lists do not read the CA', function () {
  this.timeout(60_000);
  const t = tempDir();
  const data = join(t.dir, 'data');
  const env = { PODGATE_VPN_ENDPOINTS: '172.18.12.21', PODGATE_ADMIN_PASSWORD_FILE: join(t.dir, 'admin.pw') };
  const cli = (...args: string[]) => runCli(['--data-dir', data, ...args], env);

  before(async () => {
    writeFileSync(join(t.dir, 'admin.pw'), 'admin-password-for-tests\n');
    assert.equal((await cli('init')).code, 0);
    const out = join(t.dir, 'one.ovpn');
    const r = await cli('cert', 'issue', 'one.laptop', '--owner', 'admin', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    // another key-encryption key: the CA key no longer decrypts
    writeFileSync(join(data, 'ca-key.kek'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  });
  after(() => t.cleanup());

  it('cert list and user list work without the CA key', async () => {
    const certs = await cli('--json', 'cert', 'list');
    assert.equal(certs.code, 0, certs.stderr);
    const list = JSON.parse(certs.stdout) as { commonName: string; status: string }[];
    assert.deepEqual(
      list.filter((c) => c.commonName === 'one.laptop').map((c) => c.status),
      ['valid'],
    );
    const users = await cli('user', 'list');
    assert.equal(users.code, 0, users.stderr);
    assert.match(users.stdout, /^admin\s/m);
  });

  it('401 cert revoke with the wrong CA secret: refused before anything changes', async () => {
    const r = await cli('cert', 'revoke', 'one.laptop', '--reason', 'keyCompromise');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /podgate: /);
    const after = JSON.parse((await cli('--json', 'cert', 'list')).stdout) as {
      commonName: string;
      status: string;
    }[];
    assert.deepEqual(
      after.filter((c) => c.commonName === 'one.laptop').map((c) => c.status),
      ['valid'],
    );
  });
});
