/**
 * Real sshd on loopback (no namespaces): the quoted command line reaches the remote shell intact, and every
 * refusal happens: unknown host key, changed host key (even with accept-new), pinned fingerprint mismatch,
 * a client key the server does not know, a user who is neither root nor a passwordless sudoer.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectSsh, HostKeyRefused, type SshSession } from '../../../src/gateway/ssh-session.js';
import { RemoteHost } from '../../../src/gateway/remote.js';
import {
  canRunSshd,
  createUnprivilegedUser,
  makeKey,
  startSshd,
  type KeyPair,
  type Sshd,
} from '../../helpers/sshd.js';
import { HOSTILE } from '../../unit/gateway/hostile-args.js';

describe('integration: gateway ssh (loopback sshd)', function () {
  this.timeout(60_000);
  let dir: string;
  let sshd: Sshd;
  let client: KeyPair;
  let stranger: KeyPair;
  let knownHosts: string;
  const sessions: SshSession[] = [];

  const connect = async (
    o: {
      key?: KeyPair;
      user?: string;
      acceptNew?: boolean;
      pinned?: Record<string, string>;
      port?: number;
    } = {},
  ) => {
    const s = await connectSsh({
      target: { user: o.user ?? 'root', host: '127.0.0.1', port: o.port ?? sshd.port },
      privateKey: readFileSync((o.key ?? client).privateKeyFile),
      hostKeys: { knownHostsFile: knownHosts, acceptNew: o.acceptNew, pinned: o.pinned },
    });
    sessions.push(s);
    return s;
  };

  before(async function () {
    if (!canRunSshd()) {
      if (process.env.CI === 'true') throw new Error('sshd tests need root and openssh-server');
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'pg-gw-ssh-'));
    client = await makeKey(dir, 'client');
    stranger = await makeKey(dir, 'stranger');
    sshd = await startSshd();
    sshd.authorize('root', client.publicKey);
  });
  beforeEach(() => {
    knownHosts = join(dir, `known_hosts_${Math.random().toString(16).slice(2)}`);
  });
  afterEach(() => {
    for (const s of sessions.splice(0)) s.close();
  });
  after(async () => {
    await sshd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('hostile argv arrives word for word through sshd and the login shell', async () => {
    writeFileSync(knownHosts, sshd.knownHostsLine() + '\n');
    const s = await connect();
    const r = await s.exec(['printf', '%s\\0', ...HOSTILE]);
    assert.equal(r.code, 0, r.stderr);
    const words = r.stdout.split('\0');
    words.pop();
    assert.deepEqual(words, HOSTILE);
    assert.ok(!existsSync('/tmp/pwned-podgate'), 'the $(touch) argument was not run');
    await assert.rejects(s.exec(['echo', 'a\0b']), /NUL/);
  });

  it('refuses an unknown host key and writes nothing', async () => {
    await assert.rejects(connect(), (e: HostKeyRefused) => {
      assert.ok(e instanceof HostKeyRefused);
      assert.equal(e.code, 'host_key_unknown');
      assert.match(e.message, new RegExp(sshd.hostKey.fingerprint.replace(/[+/]/g, '\\$&')));
      assert.match(e.message, /--accept-new-host-key/);
      return true;
    });
    assert.ok(!existsSync(knownHosts));
  });

  it('accept-new records the key; the next connection needs no flag', async () => {
    const s = await connect({ acceptNew: true });
    assert.equal((await s.exec(['id', '-u'])).stdout.trim(), '0');
    assert.equal(readFileSync(knownHosts, 'utf8').trim(), sshd.knownHostsLine());
    await connect();
  });

  it('refuses a changed host key, even with accept-new', async () => {
    const other = await startSshd({ hostKeyType: 'ed25519' });
    try {
      other.authorize('root', client.publicKey);
      // known_hosts says port X has sshd's key; a different server (new key) now answers there
      writeFileSync(
        knownHosts,
        `[127.0.0.1]:${other.port} ${sshd.hostKey.publicKey.split(' ').slice(0, 2).join(' ')}\n`,
      );
      const before = readFileSync(knownHosts, 'utf8');
      await assert.rejects(connect({ port: other.port, acceptNew: true }), (e: HostKeyRefused) => {
        assert.equal(e.code, 'host_key_changed');
        assert.match(e.message, /HAS CHANGED/);
        assert.ok(e.message.includes(other.hostKey.fingerprint));
        return true;
      });
      assert.equal(readFileSync(knownHosts, 'utf8'), before, 'known_hosts untouched');
    } finally {
      await other.stop();
    }
  });

  it('a pinned fingerprint accepts its host and refuses a mismatch', async () => {
    await connect({ pinned: { [`127.0.0.1:${sshd.port}`]: sshd.hostKey.fingerprint } });
    await assert.rejects(
      connect({ pinned: { [`127.0.0.1:${sshd.port}`]: stranger.fingerprint }, acceptNew: true }),
      /host_key_changed|HAS CHANGED/,
    );
  });

  it('refuses a client key the server does not know (401)', async () => {
    writeFileSync(knownHosts, sshd.knownHostsLine() + '\n');
    await assert.rejects(connect({ key: stranger }), (e: Error & { status?: number }) => {
      assert.equal(e.status, 401);
      assert.match(e.message, /refused the key/);
      return true;
    });
  });

  it('refuses a user who is neither root nor a passwordless sudoer (403)', async () => {
    const user = await createUnprivilegedUser();
    try {
      sshd.authorize(user.name, client.publicKey);
      writeFileSync(knownHosts, sshd.knownHostsLine() + '\n');
      const s = await connect({ user: user.name });
      assert.notEqual((await s.exec(['id', '-u'])).stdout.trim(), '0');
      await assert.rejects(RemoteHost.open(s), (e: Error & { status?: number }) => {
        assert.equal(e.status, 403);
        assert.match(e.message, new RegExp(`user ${user.name} is not root and has no passwordless sudo`));
        return true;
      });
    } finally {
      await user.remove();
    }
  });

  it('a passphrase-protected key works with its passphrase; a wrong or missing one is a 400 naming the identity', async () => {
    writeFileSync(knownHosts, sshd.knownHostsLine() + '\n');
    const locked = await makeKey(dir, `locked-${Math.random().toString(16).slice(2)}`, {
      passphrase: 'open sesame',
    });
    sshd.authorize('root', `${client.publicKey}\n${locked.publicKey}`);
    try {
      const attempt = (passphrase?: string) =>
        connectSsh({
          target: { user: 'root', host: '127.0.0.1', port: sshd.port },
          privateKey: readFileSync(locked.privateKeyFile),
          passphrase,
          hostKeys: { knownHostsFile: knownHosts },
        });
      const s = await attempt('open sesame');
      sessions.push(s);
      assert.equal((await s.exec(['id', '-u'])).stdout.trim(), '0');
      for (const wrong of [undefined, 'wrong']) {
        await assert.rejects(attempt(wrong), (e: Error & { status?: number; field?: string }) => {
          assert.equal(e.status, 400);
          assert.equal(e.field, 'identity');
          assert.match(e.message, /^identity: /);
          return true;
        });
      }
    } finally {
      sshd.authorize('root', client.publicKey);
    }
  });

  it('SFTP writes files with the asked mode and forwardOut reaches a loopback port', async () => {
    writeFileSync(knownHosts, sshd.knownHostsLine() + '\n');
    const s = await connect();
    const path = join(dir, 'sftp-file');
    writeFileSync(path, 'old', { mode: 0o644 });
    await s.writeFile(path, 'secret\n', 0o600);
    assert.equal(readFileSync(path, 'utf8'), 'secret\n');
    assert.equal((await s.exec(['stat', '-c', '%a', path])).stdout.trim(), '600');
    const ch = await s.forwardOut('127.0.0.1', sshd.port);
    const banner = await new Promise<string>((resolve) =>
      ch.once('data', (b: Buffer) => resolve(b.toString())),
    );
    ch.destroy();
    assert.match(banner, /^SSH-2\.0-OpenSSH/);
  });
});
