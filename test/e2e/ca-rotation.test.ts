/**
 * CA rotation with the real openvpn 2.6 in network namespaces, everything through podgate's CLI:
 * office (172.18.12.100) ─ node (172.18.12.21, `podgate server run`).
 *
 * Proves: during the overlap (`ca rotate`) the server trusts both CAs (bundle) and loads one CRL per CA
 * from one crl-verify file: a profile of the old CA and one of the new CA both connect, and a revoked one
 * of each is refused. After `ca retire-old` only new-CA profiles connect (the server certificate is then
 * re-issued by the new CA, which the new profiles trust). `server run` is started once and never
 * restarted: it notices both commands by itself and restarts only openvpn. The old CA is RSA-3072 (the
 * default before EC CAs) and `ca rotate --key-type ec-p384` moves it to EC: mixed-algorithm CA bundles and
 * CRL files during the overlap.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { serverPaths } from '../../src/openvpn/server-files.js';
import { profileBlock } from '../helpers/cli.js';
import { count, REVOKED, requireNetns, until, VpnLab } from '../helpers/topology.js';

describe('e2e: CA rotation with openvpn 2.6 (overlap: both CAs; after retire-old: new CA only)', function () {
  this.timeout(240_000);
  let lab: VpnLab;
  const issuerOf = (name: string) => new X509Certificate(profileBlock(lab.profiles[name]!, 'cert')).issuer;
  const inits = () => count(lab.server!.output(), /Initialization Sequence Completed/);

  /**
   * Waits for the running `server run` to notice a CA change and restart openvpn with it (one more
   * "Initialization Sequence Completed" than `before`), without the process being restarted.
   */
  async function reloaded(before: number): Promise<void> {
    const server = lab.server!;
    const pid = server.pid;
    await until(() => inits() > before, 30_000, 'server run to reload the CA set').catch((err: Error) => {
      throw new Error(`${err.message}:\n${server.output().slice(-2500)}`);
    });
    assert.ok(server.running, 'server run still running');
    assert.equal(server.pid, pid, 'the same server run process');
  }

  before(async function () {
    await requireNetns(this);
    lab = await VpnLab.create({ prefix: 'pgr', port: 30031, caKeyType: 'rsa-3072' });
    await lab.init();
    await lab.issue('old.ok');
    await lab.issue('old.bad');
    await lab.cli('cert', 'revoke', 'old.bad', '--reason', 'keyCompromise');
    await lab.startServerRun();
  });

  after(async () => {
    await lab?.close();
  });

  it('before the rotation: the old profile connects, the revoked one is refused', async () => {
    await lab.connects('old.ok');
    await lab.refused('old.bad', REVOKED);
  });

  it('during the overlap: an old-CA and a new-CA client both connect; a revoked one of each is refused', async () => {
    const started = inits();
    const rotate = await lab.cli('ca', 'rotate', '--key-type', 'ec-p384');
    assert.match(rotate.stdout, /new CA: podgate CA \d{12}/);
    await reloaded(started);
    await lab.issue('new.ok');
    await lab.issue('new.bad');
    assert.notEqual(issuerOf('new.ok'), issuerOf('old.ok'), 'new profiles come from the new CA');
    // New profiles carry both CAs: the server keeps its old-CA certificate during the overlap.
    assert.equal(count(profileBlock(lab.profiles['new.ok']!, 'ca'), /BEGIN CERTIFICATE/), 2);
    const caKeys = profileBlock(lab.profiles['new.ok']!, 'ca')
      .split(/(?=-----BEGIN CERTIFICATE-----)/)
      .map((pem) => new X509Certificate(pem).publicKey.asymmetricKeyType)
      .sort();
    assert.deepEqual(caKeys, ['ec', 'rsa'], 'the RSA CA and the new EC CA');
    await lab.cli('cert', 'revoke', 'new.bad', '--reason', 'keyCompromise'); // applied by the running agent

    const crl = readFileSync(serverPaths(lab.config()).activeCrl, 'utf8');
    assert.equal(count(crl, /BEGIN X509 CRL/), 2, 'one CRL per CA in the crl-verify file');
    const serverCa = readFileSync(serverPaths(lab.config()).ca, 'utf8');
    assert.equal(count(serverCa, /BEGIN CERTIFICATE/), 2, 'the server trusts both CAs');

    await lab.connects('old.ok');
    await lab.connects('new.ok');
    await lab.refused('old.bad', REVOKED);
    await lab.refused('new.bad', REVOKED);

    const status = await lab.cli('ca', 'status', '--json');
    const s = JSON.parse(status.stdout) as { onPreviousCa: { commonName: string }[] };
    assert.deepEqual(
      s.onPreviousCa.map((c) => c.commonName),
      ['old.ok'],
      'ca status names the devices still on the old CA',
    );
  });

  it('after retire-old: only new-CA clients connect', async () => {
    const started = inits();
    const r = await lab.cli('ca', 'retire-old');
    assert.match(r.stdout, /retired podgate CA/);
    await reloaded(started);
    const serverCa = readFileSync(serverPaths(lab.config()).ca, 'utf8');
    assert.equal(count(serverCa, /BEGIN CERTIFICATE/), 1);
    await lab.connects('new.ok');
    // The old profile trusts only the old CA: it rejects the server's new-CA certificate (it sees the new CA
    // in the chain and no trust anchor for it; the server never gets to check the client).
    await lab.refused(
      'old.ok',
      /VERIFY ERROR: depth=\d, error=(unable to get local issuer certificate|self-signed certificate in certificate chain)/,
      'client',
    );
    // And the server itself no longer trusts the old CA: the old certificate inside a profile that trusts
    // the new server certificate is refused by the server.
    const withCa = lab.profiles['old.ok']!.replace(
      /<ca>\n[\s\S]*?\n<\/ca>/,
      `<ca>\n${profileBlock(lab.profiles['new.ok']!, 'ca').trim()}\n</ca>`,
    );
    lab.profiles['old.ok+new-ca'] = withCa;
    await lab.refused('old.ok+new-ca', /VERIFY ERROR: depth=\d, error=[^:]+: CN=podgate CA, serial/);
    await lab.refused('new.bad', REVOKED);
  });
});
