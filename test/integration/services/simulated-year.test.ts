/**
 * Issue 21: a year in the life, in seconds. The timers of the real `podgate serve` command (run in this
 * process, web app on a loopback port, scheduled backups every 30 days) and of `server run`'s
 * supervisor share one clock moved by hand (test/helpers/manual-clock.ts) across 400 days, over one
 * data dir, with the CLI (a third context) issuing, revoking and renewing devices on the way. The CA is
 * made to last 330 days; `ca rotate` runs on day 300 (the new CA lasts 10 years) and `ca retire-old`
 * on day 345.
 *
 * openvpn is a stand-in here (an object that records starts and exits when killed): the supervisor's
 * timer logic is what is under test, and a real openvpn cannot live through 400 simulated days; the
 * e2e suites run the supervisor with the real one. Everything else is real: SQLite files, the CA
 * files and their rotation, CRL signing and verification, the agent writing the CRL openvpn would read.
 *
 * Asserted: the CRL serve publishes (where the cluster's Secret would be) and the one the agent put in
 * place are never expired at any moment; the server certificate is renewed exactly once (it leaves
 * the outgoing CA in that CA's last day) and openvpn restarts only for real changes; renewed devices
 * are revoked as superseded within the hour after their grace; backups come every 30 days (a period
 * past setTimeout's limit); the CA-expiry warning fires daily until the rotation.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs, { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../src/cli/program.js';
import type { CliEnv } from '../../../src/cli/env.js';
import { loadConfig } from '../../../src/config/load.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import type { CrlPublisher, RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';
import { ServerSupervisor } from '../../../src/openvpn/supervisor.js';
import { LocalCrlPublisher, serverDir } from '../../../src/openvpn/local-publisher.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { retireOldCa, rotateCa } from '../../../src/services/ca-rotation.js';
import { openContext, type AppContext, type ContextDeps } from '../../../src/services/context.js';
import type { CertRecord } from '../../../src/store/types.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { stopInProcessServe } from '../../helpers/cli.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Stand-in for the openvpn child: alive until kill(), then 'exit' on the next tick. */
function fakeOpenvpn(): ChildProcess {
  const child = new EventEmitter() as EventEmitter & {
    pid: number;
    exitCode: number | null;
    signalCode: NodeJS.Signals | null;
    kill(signal?: NodeJS.Signals): boolean;
  };
  child.pid = 0x7fff0000;
  child.exitCode = null;
  child.signalCode = null;
  child.kill = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    child.signalCode = signal;
    process.nextTick(() => child.emit('exit', null, signal));
    return true;
  };
  return child as unknown as ChildProcess;
}

describe('a simulated year: serve and server run timers on one clock (issue 21)', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-year-'));
    writeFileSync(join(dir, 'backup-pass'), 'a year of backups, passphrase\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('400 days: CRLs never expire, one server renewal, superseded on time, backups on schedule, CA warning', async () => {
    const t0 = Math.floor(Date.now() / 1000) * 1000;
    const clock = new ManualClock(t0);
    const day = () => (clock.now().getTime() - t0) / DAY;
    const overrides = (caDays: number) => ({
      dataDir: join(dir, 'data'),
      'ca.keyType': 'ec-p384',
      'ca.days': caDays,
      'vpn.user': '',
      'vpn.group': '',
      'vpn.endpoints': ['172.18.12.21'],
      'vpn.routes.pods': ['10.244.0.0/16'],
      'vpn.renewGraceDays': 7,
      'vpn.certDays': 120,
      'backup.dir': join(dir, 'backups'),
      'backup.passphraseFile': join(dir, 'backup-pass'),
      'backup.intervalHours': 720,
      'backup.keep': 50,
    });
    const serveConfig = () => loadConfig({ env: {}, overrides: overrides(330) });
    // `ca rotate` makes the new CA with ca.days from its own config: 10 years.
    const cliConfig = () => loadConfig({ env: {}, overrides: overrides(3650) });
    const timeDeps = { now: () => clock.now(), clock } as ContextDeps;

    // What serve publishes where the cluster's podgate-crl Secret would be.
    const published: { at: number; bundle: RevocationBundle; cas: string }[] = [];
    const caFiles = () =>
      ['ca.crt', 'ca-previous.crt']
        .map((f) => join(dir, 'data', f))
        .filter((f) => fs.existsSync(f))
        .map((f) => readFileSync(f, 'utf8'))
        .join('');
    const secret: CrlPublisher = {
      name: 'secret-stand-in',
      publish: (bundle) => {
        published.push({ at: clock.now().getTime(), bundle, cas: caFiles() });
        return Promise.resolve();
      },
    };

    // The upkeep's CA-expiry warning is logged (warn); the log is tapped, not printed.
    setLogLevel('warn');
    const warnings: { day: number; msg: string }[] = [];
    const writeSync = fs.writeSync;
    (fs as { writeSync: unknown }).writeSync = (fd: number, data: unknown, ...rest: unknown[]): number => {
      if (fd !== 2 || typeof data !== 'string')
        return (writeSync as (...a: unknown[]) => number)(fd, data, ...rest);
      for (const line of data.split('\n').filter((l) => l.startsWith('{'))) {
        const rec = JSON.parse(line) as { module?: string; msg?: string };
        if (rec.module === 'upkeep') warnings.push({ day: day(), msg: rec.msg ?? '' });
      }
      return data.length;
    };

    const out: string[] = [];
    const env: CliEnv & { webDeps: () => Promise<object> } = {
      env: {},
      loadConfig: serveConfig,
      openContext,
      // serve publishes where the real one does (the local file for server run), plus the Secret stand-in
      contextDeps: () => ({
        ...timeDeps,
        publishers: [new LocalCrlPublisher(serverDir(join(dir, 'data'))), secret],
      }),
      out: (t) => out.push(t),
      err: () => undefined,
      webDeps: () => Promise.resolve({}),
    };
    const argv = ['node', 'podgate', 'serve', '--host', '127.0.0.1', '--port', '0'];
    const sigtermBefore = process.listeners('SIGTERM');
    const serving = (await buildProgram(env, argv)).parseAsync(argv);
    let run: AppContext | undefined;
    let cli: AppContext | undefined;
    let sup: ServerSupervisor | undefined;
    try {
      for (let i = 0; i < 200 && !out.some((l) => l.startsWith('podgate web app on')); i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.ok(
        out.some((l) => l.startsWith('podgate web app on')),
        out.join('\n'),
      );

      // `server run`: its own context (another process), openvpn stood in for.
      run = await openContext(serveConfig(), timeDeps);
      let starts = 0;
      sup = new ServerSupervisor(run, {
        spawnProcess: () => {
          starts += 1;
          return fakeOpenvpn();
        },
        onOutput: () => undefined,
        lastSeenEveryMs: 0,
        // Polls kept at their real periods would fire 2.6 million times in a simulated year here.
        caCheckEveryMs: HOUR,
        bundlePollMs: HOUR,
      });
      await sup.start();
      const cliDeps = (): ContextDeps => ({
        ...timeDeps,
        publishers: [new LocalCrlPublisher(serverDir(join(dir, 'data')))],
      });
      cli = await openContext(cliConfig(), cliDeps());
      await cli.users.create({ actor: 'cli', name: 'gus', role: 'user' });

      const renewals: { serial: string; supersedeAt: number }[] = [];
      const serverCerts = async () => (await cli!.store.listAudit({ action: 'server.cert' })).length;
      assert.equal(await serverCerts(), 1, 'the server certificate made at start');
      let serverRenewedOn: number | undefined;
      let device = 0;

      for (let d = 0; d < 400; d++) {
        // The CLI's day: issue every 3 days, revoke every 10, renew every 7 (oldest valid device first).
        if (d % 3 === 0)
          await cli.devices.issue({ actor: 'cli', owner: 'gus', commonName: `gus.dev${device++}` });
        const current = async () =>
          (
            await cli!.store.listCerts({
              ownerId: (await cli!.store.getUserByName('gus'))!.id,
              status: 'valid',
              kind: 'client',
            })
          ).items
            .filter((c) => c.supersededBy === null && c.notAfter.getTime() > clock.now().getTime())
            .sort((a, b) => a.notBefore.getTime() - b.notBefore.getTime());
        if (d % 10 === 5 && (await current()).length > 0)
          await cli.revocation.revoke({
            actor: 'cli',
            serialOrName: (await current())[0]!.serial,
            reason: 'keyCompromise',
          });
        if (d % 7 === 1 && (await current()).length > 0) {
          const r = await cli.renewal.renew({ actor: 'cli', serial: (await current())[0]!.serial });
          if (r.replaced.status === 'valid')
            renewals.push({ serial: r.replaced.serial, supersedeAt: r.replaced.supersedeAt!.getTime() });
        }
        if (d === 300) {
          await rotateCa(cli, { actor: 'cli' });
          await cli.close();
          cli = await openContext(cliConfig(), cliDeps());
          await cli.server.ensure();
          await cli.revocation.resign('cli');
        }
        if (d === 345) {
          await retireOldCa(cli, 'cli');
          await cli.close();
          cli = await openContext(cliConfig(), cliDeps());
          await cli.server.ensure();
          await cli.revocation.resign('cli');
        }

        const before = await serverCerts();
        for (let h = 0; h < 24; h++) await clock.advanceBy(HOUR);
        const now = clock.now();
        if ((await serverCerts()) !== before) {
          assert.equal(serverRenewedOn, undefined, `day ${d}: a second server certificate renewal`);
          serverRenewedOn = d;
        }

        // What openvpn reads: the CRL the agent put in place and the server certificate, both valid now.
        const caBundle = readFileSync(sup.paths.ca, 'utf8');
        verifyCrl(readFileSync(sup.paths.activeCrl, 'utf8'), caBundle, now);
        const serverCert = new X509Certificate(readFileSync(sup.paths.cert, 'utf8'));
        assert.ok(
          new Date(serverCert.validTo).getTime() > now.getTime(),
          `day ${d}: server certificate expired`,
        );
        // Renewed devices whose grace ended have left (within the hour).
        for (const r of renewals.filter((x) => x.supersedeAt + HOUR <= now.getTime())) {
          const c: CertRecord = (await cli.store.getCert(r.serial))!;
          assert.equal(c.status, 'revoked', `day ${d}: ${r.serial} not superseded`);
          assert.ok(c.revokedAt!.getTime() <= r.supersedeAt + HOUR, `day ${d}: ${r.serial} superseded late`);
        }
      }

      // The Secret stand-in: at no moment did it hold an expired CRL (each one replaced before its nextUpdate).
      assert.ok(published.length >= 400, `${published.length} publishes`);
      const end = clock.now().getTime();
      published.forEach((p, i) => {
        const until = i + 1 < published.length ? published[i + 1]!.at : end;
        // verifyCrl refuses a CRL that is expired at the time given: the moment before the next publish.
        assert.doesNotThrow(
          () => verifyCrl(p.bundle.crlPem, p.cas, new Date(until - 1000)),
          `publish #${i} (day ${(p.at - t0) / DAY}) expired before the next one`,
        );
      });

      // One server certificate renewal, in the outgoing CA's last day (it ends on day 330).
      assert.equal(await serverCerts(), 2);
      const oldCaEnd = t0 + 330 * DAY;
      const renewed = (await cli.store.listCerts({ kind: 'server' })).items.sort(
        (x, y) => y.notBefore.getTime() - x.notBefore.getTime(),
      )[0]!;
      const renewedAt = renewed.notBefore.getTime() + 5 * 60_000; // notBefore is 5 minutes back
      assert.ok(
        renewedAt >= oldCaEnd - DAY && renewedAt < oldCaEnd,
        `server certificate renewed on day ${(renewedAt - t0) / DAY} (loop day ${serverRenewedOn})`,
      );
      assert.equal(renewed.issuerKeyId, cli.ca.keyId, 'by the new CA');
      // openvpn restarted only for the rotation, the renewal and the retirement.
      assert.equal(starts, 4);

      assert.ok(renewals.length > 40, `${renewals.length} renewals`);
      // Backups on schedule: day 0, then every 30 days (named by the clock that took them).
      assert.ok((await cli.store.listAudit({ action: 'backup.scheduled' })).every((b) => b.result === 'ok'));
      const taken = fs
        .readdirSync(join(dir, 'backups'))
        .map((n) => /^podgate-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(n)!)
        .map((m) => Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`));
      assert.deepEqual(
        taken.map((t) => (t - t0) / DAY),
        Array.from({ length: 14 }, (_, i) => i * 30),
      );
      // The CA-expiry warning: daily from the start until the rotation, then silent (the new CA lasts 10 years).
      const expiry = warnings.filter((w) => /expires in \d+ days/.test(w.msg));
      assert.ok(expiry.length >= 299 && expiry.length <= 302, `${expiry.length} warnings`);
      assert.ok(
        expiry.every((w) => w.day <= 301),
        'no warning after the rotation',
      );
    } finally {
      (fs as { writeSync: unknown }).writeSync = writeSync;
      setLogLevel('error');
      stopInProcessServe(sigtermBefore);
      await serving;
      await sup?.stop();
      await run?.close();
      await cli?.close();
    }
  });
});
