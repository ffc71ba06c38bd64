/**
 * Issue 21, item 1: `serve` keeps the CRL fresh on its own timer. The real `serve` command runs in this
 * process (its web app on a loopback port, no request ever made to it) with a clock moved by hand
 * (test/helpers/manual-clock.ts) and a publisher that records what reaches it, where the cluster's
 * `podgate-crl` Secret would be. Over 40 days without a revocation: the CRL it publishes never
 * expires, and a renewed device's old certificate is revoked as superseded when its grace ends.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../../src/cli/program.js';
import type { CliEnv } from '../../../src/cli/env.js';
import { loadConfig } from '../../../src/config/load.js';
import { setLogLevel } from '../../../src/lib/logger.js';
import type { CrlPublisher, RevocationBundle } from '../../../src/openvpn/revocation-bundle.js';
import { verifyCrl } from '../../../src/pki/index.js';
import { openContext, type ContextDeps } from '../../../src/services/context.js';
import { ManualClock } from '../../helpers/manual-clock.js';
import { stopInProcessServe } from '../../helpers/cli.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('serve keeps the CRL fresh without requests (issue 21, item 1)', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-serve-upkeep-'));
    setLogLevel('error');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('40 days, no request: the published CRL never expires; a renewal is superseded when its grace ends', async () => {
    const clock = new ManualClock(Date.parse('2027-03-01T00:00:00Z'));
    const published: { at: number; bundle: RevocationBundle }[] = [];
    const recorder: CrlPublisher = {
      name: 'recorder',
      publish: (bundle) => {
        published.push({ at: clock.now().getTime(), bundle });
        return Promise.resolve();
      },
    };
    const config = () =>
      loadConfig({
        env: {},
        overrides: {
          dataDir: join(dir, 'data'),
          'ca.keyType': 'ec-p384',
          'vpn.endpoints': ['172.18.12.21'],
          'vpn.routes.pods': ['10.244.0.0/16'],
          'vpn.renewGraceDays': 7,
        },
      });
    const deps = { publishers: [recorder], now: () => clock.now(), clock } as ContextDeps;
    const out: string[] = [];
    const env: CliEnv & { webDeps: () => Promise<object> } = {
      env: {},
      loadConfig: config,
      openContext,
      contextDeps: () => deps,
      out: (t) => out.push(t),
      err: () => undefined,
      webDeps: () => Promise.resolve({}),
    };
    const argv = ['node', 'podgate', 'serve', '--host', '127.0.0.1', '--port', '0'];
    const program = await buildProgram(env, argv);
    const sigtermBefore = process.listeners('SIGTERM');
    const serving = program.parseAsync(argv);
    for (let i = 0; i < 200 && !out.some((l) => l.startsWith('podgate web app on')); i++)
      await new Promise((r) => setTimeout(r, 50));
    // a second process beside serve (the CLI) issues and renews on the same data dir
    const cli = await openContext(config(), { now: () => clock.now() });
    try {
      assert.ok(
        out.some((l) => l.startsWith('podgate web app on')),
        out.join('\n'),
      );
      await cli.users.create({ actor: 't', name: 'ann', role: 'user', password: 'a-long-password-1' });
      const { cert: old } = await cli.devices.issue({ actor: 't', owner: 'ann', commonName: 'ann.laptop' });
      await clock.advanceBy(DAY);
      await cli.renewal.renew({ actor: 't', serial: old.serial });
      const graceEnd = clock.now().getTime() + 7 * DAY;

      const start = clock.now().getTime();
      while (clock.now().getTime() - start < 40 * DAY) {
        await clock.advanceBy(HOUR);
        const now = clock.now();
        const last = published.at(-1);
        assert.ok(last, 'serve published a CRL');
        // throws when the CRL openvpn would read is expired (or not from this CA)
        verifyCrl(last.bundle.crlPem, cli.ca.certPem, now);
        if (now.getTime() >= graceEnd + HOUR) {
          assert.equal(
            (await cli.store.getCert(old.serial))!.status,
            'revoked',
            `${now.toISOString()}: superseded`,
          );
          assert.ok(last.bundle.revoked.some((r) => r.serial === old.serial));
        }
      }
      const revokedAt = (await cli.store.getCert(old.serial))!.revokedAt!.getTime();
      assert.ok(revokedAt >= graceEnd && revokedAt <= graceEnd + HOUR, 'superseded within the hour');
      assert.ok(published.length >= 40, `re-signed about daily (${published.length} publishes)`);
    } finally {
      stopInProcessServe(sigtermBefore);
      await serving;
      await cli.close();
    }
  });
});
