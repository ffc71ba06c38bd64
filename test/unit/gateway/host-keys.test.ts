/**
 * host-keys: fingerprints match ssh-keygen's, known_hosts patterns (plain, hashed, wildcard, negated,
 * @revoked) and the verdicts known / unknown / changed, with pinned fingerprints winning.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HostKeyCheck,
  decideHostKey,
  hostKeyFingerprint,
  hostMatches,
  parseKnownHosts,
  wireKeyType,
} from '../../../src/gateway/host-keys.js';
import { makeKey, type KeyPair } from '../../helpers/sshd.js';

describe('unit: gateway/host-keys', () => {
  let dir: string;
  let a: KeyPair;
  let b: KeyPair;
  const wire = (k: KeyPair): Buffer => Buffer.from(k.publicKey.split(' ')[1]!, 'base64');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-hk-'));
    a = await makeKey(dir, 'a');
    b = await makeKey(dir, 'b', { type: 'ecdsa' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('fingerprint and key type agree with ssh-keygen', () => {
    assert.equal(hostKeyFingerprint(wire(a)), a.fingerprint);
    assert.equal(hostKeyFingerprint(wire(b)), b.fingerprint);
    assert.equal(wireKeyType(wire(a)), 'ssh-ed25519');
    assert.equal(wireKeyType(wire(b)), 'ecdsa-sha2-nistp256');
  });

  it('matches plain, list, wildcard, negated and hashed host patterns', () => {
    assert.ok(hostMatches('gw,10.0.0.1', '10.0.0.1'));
    assert.ok(hostMatches('[127.0.0.1]:2222', '[127.0.0.1]:2222'));
    assert.ok(!hostMatches('127.0.0.1', '[127.0.0.1]:2222'));
    assert.ok(hostMatches('*.office.lan', 'gw.office.lan'));
    assert.ok(!hostMatches('*.office.lan,!gw.office.lan', 'gw.office.lan'));
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('gw.office.lan').digest('base64');
    assert.ok(hostMatches(`|1|${salt.toString('base64')}|${hash}`, 'gw.office.lan'));
    assert.ok(!hostMatches(`|1|${salt.toString('base64')}|${hash}`, 'other'));
  });

  it('known, unknown, changed (other key or other type), revoked; pinned wins', () => {
    const entries = parseKnownHosts(`# comment\n\ngw ${a.publicKey}\n@cert-authority * ${b.publicKey}\n`);
    assert.equal(decideHostKey('gw', wire(a), entries).verdict, 'known');
    assert.equal(decideHostKey('other', wire(a), entries).verdict, 'unknown');
    assert.equal(decideHostKey('gw', wire(b), entries).verdict, 'changed');
    const revoked = parseKnownHosts(`@revoked * ${a.publicKey}\ngw ${a.publicKey}\n`);
    assert.equal(decideHostKey('gw', wire(a), revoked).verdict, 'revoked');
    assert.equal(decideHostKey('gw', wire(b), entries, b.fingerprint).verdict, 'known');
    assert.equal(decideHostKey('gw', wire(a), [], b.fingerprint).verdict, 'changed');
  });

  it('accept-new records the key; dry runs do not; a recorded host is then known', () => {
    const file = join(dir, 'known_hosts');
    const dry = new HostKeyCheck(
      { knownHostsFile: file, acceptNew: true, record: false },
      '127.0.0.1',
      2222,
      '[127.0.0.1]:2222',
    );
    assert.equal(dry.verify(wire(a)), true);
    assert.throws(() => readFileSync(file));
    const real = new HostKeyCheck(
      { knownHostsFile: file, acceptNew: true },
      '127.0.0.1',
      2222,
      '[127.0.0.1]:2222',
    );
    assert.equal(real.verify(wire(a)), true);
    assert.match(readFileSync(file, 'utf8'), /^\[127\.0\.0\.1\]:2222 ssh-ed25519 \S+\n$/);
    const again = new HostKeyCheck(
      { knownHostsFile: file, acceptNew: true },
      '127.0.0.1',
      2222,
      '[127.0.0.1]:2222',
    );
    assert.equal(again.verify(wire(b)), false, 'accept-new never accepts a changed key');
    assert.equal(again.decision?.verdict, 'changed');
    assert.deepEqual(again.serverHostKeyAlgorithms(), ['ssh-ed25519']);
  });

  it('pinned fingerprints are looked up by host:port, [host]:port and host (port 22)', () => {
    const file = join(dir, 'none');
    writeFileSync(file, '');
    const c1 = new HostKeyCheck(
      { knownHostsFile: file, pinned: { 'gw:2222': a.fingerprint } },
      'gw',
      2222,
      '[gw]:2222',
    );
    assert.equal(c1.verify(wire(a)), true);
    const c2 = new HostKeyCheck({ knownHostsFile: file, pinned: { gw: a.fingerprint } }, 'gw', 22, 'gw');
    assert.equal(c2.verify(wire(b)), false);
    assert.equal(c2.decision?.verdict, 'changed');
  });
});
