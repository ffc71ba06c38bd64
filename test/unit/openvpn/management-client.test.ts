/**
 * The management client against a fake server written here that speaks the protocol as openvpn 2.6 does
 * (prompt without line end, CRLF, `>` notifications interleaved with replies, one client at a time).
 * The e2e suite runs the same client against the real binary.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagementClient, withManagement } from '../../../src/openvpn/management-client.js';
import { parseStatus3, sessionsOf } from '../../../src/openvpn/status.js';
import { ManagementSessionsProvider } from '../../../src/openvpn/sessions-provider.js';
import type { AppError } from '../../../src/lib/errors.js';

const STATUS = [
  'TITLE\tOpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL (OpenSSL)]',
  'TIME\t2026-11-27 12:02:35\t1795780955',
  'HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher',
  'CLIENT_LIST\talice.laptop\t172.18.12.100:40001\t10.140.0.2\t\t3000\t4000\t2026-11-27 12:00:00\t1795780800\tUNDEF\t7\t0\tAES-256-GCM',
  'CLIENT_LIST\talice.laptop\t172.18.12.101:40002\t10.140.0.3\t\t10\t20\t2026-11-27 12:01:00\t1795780860\tUNDEF\t9\t1\tAES-256-GCM',
  'CLIENT_LIST\tbob.phone\t172.18.12.102:40003\t10.140.0.4\t\t1\t2\t2026-11-27 12:01:30\t1795780890\tUNDEF\t11\t2\tCHACHA20-POLY1305',
  // a connection in its TLS handshake: no common name yet, no tunnel address (openvpn 2.6 lists it so)
  'CLIENT_LIST\tUNDEF\t172.18.12.103:40004\t\t\t120\t90\t2026-11-27 12:02:34\t1795780954\tUNDEF\t12\t3\tnone',
  'HEADER\tROUTING_TABLE\tVirtual Address\tCommon Name\tReal Address\tLast Ref\tLast Ref (time_t)',
  'ROUTING_TABLE\t10.140.0.2\talice.laptop\t172.18.12.100:40001\t2026-11-27 12:02:30\t1795780950',
  'GLOBAL_STATS\tMax bcast/mcast queue length\t0',
  'GLOBAL_STATS\tdco_enabled\t1',
];

interface FakeOptions {
  password?: string;
  /** Reply to a command; undefined = never answer (timeout test). */
  reply?: (cmd: string) => string | undefined;
}

function startFake(
  path: string,
  o: FakeOptions,
): Promise<{ server: Server; commands: string[]; sockets: Socket[] }> {
  const commands: string[] = [];
  const sockets: Socket[] = [];
  const server = createServer((sock) => {
    sockets.push(sock);
    let authed = o.password === undefined;
    const greet = () =>
      sock.write(">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n");
    if (authed) greet();
    else sock.write('ENTER PASSWORD:');
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!authed) {
          if (line === o.password) {
            authed = true;
            sock.write('SUCCESS: password is correct\r\n');
            greet();
          } else sock.write('ENTER PASSWORD:');
          continue;
        }
        commands.push(line);
        if (line === 'quit') return void sock.end();
        const r = o.reply?.(line);
        if (r !== undefined) sock.write(r);
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve({ server, commands, sockets })));
}

function defaultReply(cmd: string): string | undefined {
  if (cmd === 'status 3') {
    // A notification arrives in the middle of the reply, as openvpn may send one at any time.
    const lines = [...STATUS.slice(0, 4), '>CLIENT:ESTABLISHED,11', ...STATUS.slice(4), 'END'];
    return lines.map((l) => `${l}\r\n`).join('');
  }
  if (/^client-kill \d+( HALT)?$/.test(cmd)) {
    return cmd.startsWith('client-kill 404')
      ? 'ERROR: client-kill command failed\r\n'
      : 'SUCCESS: client-kill command succeeded\r\n';
  }
  if (cmd === 'slow') return undefined;
  return `ERROR: unknown command [${cmd}], enter 'help' for more options\r\n`;
}

describe('openvpn/management-client (fake server)', () => {
  let dir: string;
  let sock: string;
  let fake: Awaited<ReturnType<typeof startFake>>;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-mgmt-'));
    sock = join(dir, 'mgmt.sock');
    fake = await startFake(sock, { password: 's3cret', reply: defaultReply });
  });
  afterEach(() => {
    for (const s of fake.sockets) s.destroy();
    fake.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('authenticates, parses status 3 and emits the interleaved notification', async () => {
    const m = await ManagementClient.connect({ socketPath: sock, password: 's3cret' });
    const notes: string[] = [];
    m.on('notification', (n: string) => notes.push(n));
    const status = await m.status();
    m.close();
    assert.deepEqual(notes, ['CLIENT:ESTABLISHED,11']);
    assert.equal(status.clients.length, 3, 'the connection in its handshake is not a session');
    assert.deepEqual(
      status.handshaking.map((h) => [h.clientId, h.realAddress]),
      [[12, '172.18.12.103:40004']],
    );
    assert.deepEqual(
      sessionsOf(status, 'alice.laptop').map((s) => s.clientId),
      [7, 9],
      'two sessions with one CN',
    );
    const bob = sessionsOf(status, 'bob.phone')[0]!;
    assert.equal(bob.cipher, 'CHACHA20-POLY1305');
    assert.equal(bob.connectedSince.toISOString(), new Date(1795780890 * 1000).toISOString());
    assert.equal(status.dcoEnabled, true);
    assert.equal(status.routes[0]!.virtualAddress, '10.140.0.2');
  });

  it('the sessions provider lists no connection in its handshake (UNDEF) and will not disconnect one', async () => {
    const provider = new ManagementSessionsProvider({ socketPath: sock, password: 's3cret' });
    const list = await provider.list();
    assert.deepEqual(
      list.map((s) => `${s.cid} ${s.commonName}`),
      ['7 alice.laptop', '9 alice.laptop', '11 bob.phone'],
    );
    await assert.rejects(provider.disconnect('12'), (e: AppError) => e.status === 404);
    await provider.disconnect('11');
    assert.deepEqual(
      fake.commands.filter((c) => c.startsWith('client-kill')),
      ['client-kill 11 HALT'],
    );
  });

  it('queues commands: one at a time, in order', async () => {
    await withManagement({ socketPath: sock, password: 's3cret' }, async (m) => {
      await Promise.all([m.clientKill(7, true), m.clientKill(9, false), m.status()]);
    });
    assert.deepEqual(fake.commands.slice(0, 3), ['client-kill 7 HALT', 'client-kill 9', 'status 3']);
    for (let i = 0; i < 50 && fake.commands.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(fake.commands[3], 'quit', 'close() says quit');
  });

  it('ERROR replies reject with a 502 AppError; the session goes on', async () => {
    await withManagement({ socketPath: sock, password: 's3cret' }, async (m) => {
      await assert.rejects(
        m.clientKill(404, true),
        (e: Error & { status?: number }) => e.status === 502 && /client-kill command failed/.test(e.message),
      );
      assert.equal((await m.status()).clients.length, 3);
    });
  });

  it('a wrong password is refused at once', async () => {
    await assert.rejects(
      ManagementClient.connect({ socketPath: sock, password: 'nope' }),
      /refused the password/,
    );
  });

  it('a missing reply times out and closes the session', async () => {
    const m = await ManagementClient.connect({ socketPath: sock, password: 's3cret', commandTimeoutMs: 200 });
    await assert.rejects(m.command('slow'), /no reply to "slow" within 200 ms/);
    assert.equal(m.isOpen, false);
    await assert.rejects(m.status(), /connection closed/);
  });

  it('a socket that is not there is a 502', async () => {
    await assert.rejects(
      ManagementClient.connect({ socketPath: join(dir, 'none.sock') }),
      (e: Error & { status?: number }) => e.status === 502,
    );
  });

  it('refuses a multi-line command', async () => {
    await withManagement({ socketPath: sock, password: 's3cret' }, async (m) => {
      await assert.rejects(m.command('status\nkill all'), /one line/);
    });
  });

  it('parseStatus3 refuses a reply that is not a status', () => {
    assert.throws(() => parseStatus3(['SUCCESS: ok']), /no TITLE/);
  });
});
