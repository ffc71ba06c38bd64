/**
 * A `podgate serve` that keeps running through `podgate ca rotate` and `ca retire-old` (run by the CLI,
 * another process): profiles issued through its web API come from the new CA at once, and the CRL it
 * signs after a revocation has one CRL per CA in force. Checked with the openssl CLI.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../../src/lib/exec.js';
import { profileBlock, tempDir } from '../../helpers/cli.js';
import { startServe, type Serving } from '../../helpers/serve.js';
import { OpensslWorkspace } from '../../unit/pki/openssl.js';

const CLI = join(process.cwd(), 'dist', 'src', 'cli.js');
const ENV = { PODGATE_VPN_ENDPOINTS: 'vpn.example.test' };

describe('serve picks up a CA rotation made by the CLI without a restart', function () {
  this.timeout(120_000);
  const t = tempDir('podgate-serve-rotate-');
  const data = join(t.dir, 'data');
  const ssl = new OpensslWorkspace();
  let serve: Serving | undefined;
  let token: string;

  const cli = (...args: string[]) =>
    exec([process.execPath, CLI, '--data-dir', data, ...args], {
      env: { ...process.env, ...ENV, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '' },
      timeoutMs: 60_000,
    });
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${serve!.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as Record<string, unknown>;
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  /** Issues a device through serve's API and returns its certificate file in the workspace. */
  const serials: Record<string, string> = {};
  const issue = async (name: string): Promise<string> => {
    const r = (await api('POST', '/devices', { name })) as { profile: string; device: { serial: string } };
    serials[name] = r.device.serial;
    return ssl.file(`${name}.crt`, profileBlock(r.profile, 'cert'));
  };
  const verifies = async (caFile: string, certFile: string) =>
    (await ssl.run(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, certFile])).code ===
    0;

  before(async () => {
    writeFileSync(join(t.dir, 'admin.pw'), 'admin-password-for-tests\n', { mode: 0o600 });
    await exec([process.execPath, CLI, '--data-dir', data, 'init'], {
      env: { ...process.env, ...ENV, PODGATE_ADMIN_PASSWORD_FILE: join(t.dir, 'admin.pw') },
    });
    token = /^(pgt_\S+)$/m.exec((await cli('token', 'create', 'admin')).stdout)![1]!;
    serve = await startServe({ dataDir: data, env: ENV });
  });
  after(async () => {
    await serve?.stop();
    ssl.cleanup();
    t.cleanup();
  });

  it('ca rotate: the next profile from the running serve is signed by the new CA; its CRL covers both CAs', async () => {
    const oldCa = ssl.file('old-ca.crt', readFileSync(join(data, 'ca.crt'), 'utf8'));
    const before = await issue('before-rotate');
    assert.ok(await verifies(oldCa, before));

    const rotated = await cli('ca', 'rotate', '--key-type', 'rsa-3072');
    assert.match(rotated.stdout, /new CA: /);
    const newCa = ssl.file('new-ca.crt', readFileSync(join(data, 'ca.crt'), 'utf8'));
    assert.notEqual(readFileSync(newCa, 'utf8'), readFileSync(oldCa, 'utf8'));

    const after = await issue('after-rotate');
    assert.ok(await verifies(newCa, after), 'issued by the new CA');
    assert.equal(await verifies(oldCa, after), false, 'not by the old one');

    // A revocation through the same serve: it signs one CRL per CA in force, each verified by openssl.
    await api('POST', `/certs/${serials['before-rotate']!}/revoke`, { reason: 'keyCompromise' });
    const crl = await (await fetch(`${serve!.url}/crl.pem`)).text();
    const crls = crl.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----\n/g) ?? [];
    assert.equal(crls.length, 2, crl);
    const byCa = await Promise.all(
      crls.map(async (c, i) => {
        const f = ssl.file(`crl${i}.pem`, c);
        return [
          (await ssl.run(['crl', '-in', f, '-CAfile', newCa, '-verify', '-noout'])).code === 0,
          (await ssl.run(['crl', '-in', f, '-CAfile', oldCa, '-verify', '-noout'])).code === 0,
        ];
      }),
    );
    assert.deepEqual(byCa.map(([n, o]) => (n ? 'new' : o ? 'old' : 'none')).sort(), ['new', 'old']);
    const revoked = await ssl.run(['verify', '-crl_check', '-CAfile', oldCa, '-CRLfile', ssl.path('crl0.pem'), '-CRLfile', ssl.path('crl1.pem'), before]); // prettier-ignore
    assert.match(revoked.stdout + revoked.stderr, /certificate revoked/);
  });

  it('ca retire-old: the running serve issues profiles that trust the new CA only', async () => {
    await cli('ca', 'retire-old');
    const r = (await api('POST', '/devices', { name: 'after-retire' })) as { profile: string };
    const ca = profileBlock(r.profile, 'ca');
    assert.equal((ca.match(/BEGIN CERTIFICATE/g) ?? []).length, 1, 'the profile trusts one CA');
    assert.equal(ca.trim(), readFileSync(join(data, 'ca.crt'), 'utf8').trim());
    const cert = ssl.file('after-retire.crt', profileBlock(r.profile, 'cert'));
    assert.ok(await verifies(ssl.path('new-ca.crt'), cert));
  });
});
