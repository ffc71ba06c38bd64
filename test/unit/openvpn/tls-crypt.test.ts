/**
 * tls-crypt keys against the real openvpn binary: openvpn's own tls-crypt-v2 client keys are golden
 * vectors (unwrap with the server key, re-wrap Kc + metadata here: the PEM must be byte-identical),
 * openvpn wraps client keys with a podgate server key, and openvpn parses podgate's static key.
 * The e2e suite proves a running server accepts podgate's keys in a handshake.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../../../src/lib/exec.js';
import {
  generateTlsCryptKey,
  generateTlsCryptV2ServerKey,
  unwrapTlsCryptV2ClientKey,
  wrapTlsCryptV2ClientKey,
} from '../../../src/pki/tls-crypt.js';

describe('pki/tls-crypt against openvpn --genkey', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-tlscrypt-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function openvpnClientKey(serverFile: string, name: string): Promise<string> {
    const out = join(dir, name);
    await exec(['openvpn', '--genkey', 'tls-crypt-v2-client', out, '--tls-crypt-v2', serverFile]);
    return readFileSync(out, 'utf8');
  }

  it('re-wraps openvpn client keys byte for byte (golden vectors, 5 keys)', async () => {
    const serverFile = join(dir, 'server.key');
    await exec(['openvpn', '--genkey', 'tls-crypt-v2-server', serverFile]);
    const serverPem = readFileSync(serverFile, 'utf8');
    for (let i = 0; i < 5; i++) {
      const golden = await openvpnClientKey(serverFile, `client${i}.key`);
      const { kc, metadata } = unwrapTlsCryptV2ClientKey(serverPem, golden);
      assert.equal(kc.length, 256);
      assert.equal(metadata[0], 0x01, 'openvpn default metadata is a timestamp');
      const timestamp = new Date(Number(metadata.readBigInt64BE(1)) * 1000);
      assert.ok(Math.abs(timestamp.getTime() - Date.now()) < 120_000, 'timestamp is about now');
      assert.equal(wrapTlsCryptV2ClientKey(serverPem, { kc, timestamp }), golden);
    }
  });

  it('openvpn wraps client keys with a podgate server key, and podgate unwraps them', async () => {
    const serverPem = generateTlsCryptV2ServerKey();
    assert.match(serverPem, /^-----BEGIN OpenVPN tls-crypt-v2 server key-----\n/);
    const serverFile = join(dir, 'podgate-server.key');
    writeFileSync(serverFile, serverPem);
    const fromOpenvpn = await openvpnClientKey(serverFile, 'by-openvpn.key');
    const { kc, metadata } = unwrapTlsCryptV2ClientKey(serverPem, fromOpenvpn);
    const timestamp = new Date(Number(metadata.readBigInt64BE(1)) * 1000);
    assert.equal(wrapTlsCryptV2ClientKey(serverPem, { kc, timestamp }), fromOpenvpn);
  });

  it('a client key wrapped with another server key is refused (tag mismatch)', () => {
    const a = generateTlsCryptV2ServerKey();
    const b = generateTlsCryptV2ServerKey();
    const client = wrapTlsCryptV2ClientKey(a);
    assert.match(client, /^-----BEGIN OpenVPN tls-crypt-v2 client key-----\n/);
    assert.doesNotThrow(() => unwrapTlsCryptV2ClientKey(a, client));
    assert.throws(() => unwrapTlsCryptV2ClientKey(b, client), /tag mismatch/);
  });

  it('400 on a malformed server key, naming the field', () => {
    assert.throws(
      () => wrapTlsCryptV2ClientKey('nope'),
      (e: Error & { status?: number }) => e.status === 400 && /serverKeyPem/.test(e.message),
    );
    const short =
      '-----BEGIN OpenVPN tls-crypt-v2 server key-----\nAAAA\n-----END OpenVPN tls-crypt-v2 server key-----\n';
    assert.throws(() => wrapTlsCryptV2ClientKey(short), /expected 128 bytes/);
  });

  it('user metadata is carried as type 0x00', () => {
    const s = generateTlsCryptV2ServerKey();
    const c = wrapTlsCryptV2ClientKey(s, { userMetadata: Buffer.from('alice.laptop') });
    const { metadata } = unwrapTlsCryptV2ClientKey(s, c);
    assert.equal(metadata[0], 0x00);
    assert.equal(metadata.subarray(1).toString(), 'alice.laptop');
  });

  it('openvpn parses the podgate static key (openvpn --test-crypto)', async () => {
    const pem = generateTlsCryptKey();
    const f = join(dir, 'static.key');
    writeFileSync(f, pem);
    const r = await exec(['openvpn', '--test-crypto', '--secret', f, '--cipher', 'AES-256-CBC'], {
      timeoutMs: 30_000,
    });
    assert.match(r.stdout, /self-test mode SUCCEEDED/);
    const ref = join(dir, 'ref.key');
    await exec(['openvpn', '--genkey', 'tls-crypt', ref]);
    assert.equal(
      pem.split('\n').length,
      readFileSync(ref, 'utf8').split('\n').length,
      'same shape as openvpn',
    );
  });
});
