/**
 * "From I need the cluster to connected": a user makes a one-use import link in Chromium, the QR code on
 * the page decodes to that link, a client that behaves like OpenVPN Connect follows it once (a second
 * fetch is refused), and the profile it got connects with the real openvpn client in a network
 * namespace through `podgate server run`. Traffic through the tunnel (iperf3 to the "pod") shows up in
 * the recorded session history; the admin's usage chart renders in Chromium and its CSV matches the rows.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jsQRModule from 'jsqr';
import { PNG } from 'pngjs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { logger, setLogLevel } from '../../src/lib/logger.js';
import { openContext, type AppContext } from '../../src/services/context.js';
import { contextDepsFor } from '../../src/main.js';
import { startServer, type RunningServer } from '../../src/web/server.js';
import { CHROMIUM, CHROMIUM_ARGS, requireChromium, SHOTS, watchConsoleErrors } from '../helpers/browser.js';
import { followImportLink } from '../helpers/connect-client.js';
import { OFFICE_NODE_POD as A, runIn, type SpawnedProcess } from '../helpers/netns.js';
import { waitClientConnected } from '../helpers/openvpn.js';
import { ADMIN_PASSWORD, requireNetns, until, VpnLab } from '../helpers/topology.js';

const MB = 1024 * 1024;
// jsqr is CommonJS with an `export default` in its types: under NodeNext the function is `.default`.
type JsQr = (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
const jsQR: JsQr = (jsQRModule as unknown as { default?: JsQr }).default ?? (jsQRModule as unknown as JsQr);

/** The text a QR code in a PNG data URL holds (decoded by jsQR, a second implementation). */
function decodeQr(dataUrl: string): string | undefined {
  const m = /^data:image\/png;base64,(.+)$/.exec(dataUrl);
  assert.ok(m, 'the QR code is a PNG data URL');
  const png = PNG.sync.read(Buffer.from(m[1]!, 'base64'));
  return jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data;
}

describe('browser: Add to OpenVPN Connect, the tunnel, and the usage history', function () {
  this.timeout(180_000);
  let lab: VpnLab;
  let ctx: AppContext;
  let server: RunningServer;
  let browser: BrowserContext;
  let page: Page;
  let profileDir: string;
  let level: string;
  let client: SpawnedProcess | undefined;
  const consoleErrors: string[] = [];

  before(async function () {
    requireChromium(this);
    await requireNetns(this);
    level = logger.level;
    setLogLevel('error');
    lab = await VpnLab.create({
      prefix: 'imp',
      vpn: ['  nat: true'],
      top: ['sessions: { recordEverySeconds: 1 }'],
    });
    await lab.init();
    await lab.startServerRun();
    // As `serve` opens it: new devices reach `server run` (access bundle: address, client-config-dir).
    const config = lab.config();
    ctx = await openContext(config, contextDepsFor(config));
    server = await startServer({ ctx, host: '127.0.0.1', port: 0 });
    profileDir = mkdtempSync(join(tmpdir(), 'podgate-chromium-'));
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    watchConsoleErrors(page, consoleErrors);
  });

  after(async () => {
    await client?.stop(5000).catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await ctx?.close();
    await lab?.close();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    if (level) setLogLevel(level);
  });

  let link = '';

  it('makes a one-use link and its QR code on the devices page; the QR decodes to the link', async () => {
    await page.goto(`${server.url}/login`);
    await page.fill('#name', 'admin');
    await page.fill('#password', ADMIN_PASSWORD);
    await Promise.all([page.waitForURL(`${server.url}/devices`), page.press('#password', 'Enter')]);
    await page.fill('#import-device-name', 'phone');
    await Promise.all([page.waitForSelector('#import-link'), page.click('#import-link-button')]);
    link = (await page.textContent('#import-link'))!.trim();
    assert.match(
      link,
      /^openvpn:\/\/import-profile\/http:\/\/127\.0\.0\.1:\d+\/import\/profile\?token=[\w-]{43}$/,
    );
    assert.equal(await page.getAttribute('#import-open', 'href'), link);
    const qr = (await page.getAttribute('#import-qr', 'src'))!;
    assert.ok(
      await page.evaluate(() => (document.querySelector('#import-qr') as HTMLImageElement).naturalWidth > 0),
    );
    assert.equal(decodeQr(qr), link, 'the QR code holds exactly the link');
    await page.screenshot({ path: join(SHOTS, 'import-link-desktop.png'), fullPage: true });
    assert.equal(await ctx.store.getValidCertByCommonName('admin.phone'), undefined, 'nothing issued yet');
  });

  it('a Connect-like client fetches it once; the second fetch is refused; the profile connects in a namespace', async () => {
    const first = await followImportLink(link);
    assert.ok(first.ok, first.ok ? '' : `first fetch refused: ${first.status} ${first.body}`);
    assert.match(first.contentType, /^application\/x-openvpn-profile/);
    assert.equal(first.headers.get('cache-control'), 'no-store');
    const second = await followImportLink(link);
    assert.equal(second.status, 410, 'the second fetch is refused');
    assert.equal(
      (await ctx.store.listCerts({ search: 'admin.phone' })).total,
      1,
      'one certificate, from the first fetch',
    );

    client = lab.client('phone', { profile: first.profile });
    await waitClientConnected(client, 30_000);
  });

  it('traffic through the tunnel is recorded with its bytes; the session ends when the client quits', async () => {
    const iperfServer = lab.topo.spawn(
      'pod',
      ['iperf3', '-s', '-1', '--forceflush', '-B', A.pod, '-p', '5201'],
      {
        logFile: join(lab.work, 'iperf3-server.log'),
      },
    );
    await iperfServer.waitFor(/Server listening/, 10_000);
    const r = await runIn(lab.topo.name('office'), ['iperf3', '-c', A.pod, '-p', '5201', '-n', '20M', '-J'], {
      timeoutMs: 60_000,
      check: false,
    });
    const j = JSON.parse(r.stdout) as { error?: string; end?: { sum_sent?: { bytes: number } } };
    assert.ok(j.end?.sum_sent, `iperf3 through the tunnel: ${j.error ?? r.stderr}`);
    const sent = j.end.sum_sent.bytes;
    assert.ok(sent >= 20 * MB);

    // server run reads the sessions every second: the bytes the server received show up. openvpn's
    // counters are its own (measured here: 99.3 % of iperf3's payload bytes), hence the 90 % floor.
    const floor = Math.floor(sent * 0.9);
    await until(
      async () => ((await ctx.store.listSessionHistory({ user: 'admin' }))[0]?.bytesIn ?? 0) >= floor,
      20_000,
      'the recorded session to carry the iperf3 bytes',
    ).catch(async (err: Error) => {
      const rows = JSON.stringify(await ctx.store.listSessionHistory());
      throw new Error(
        `${err.message}; sent ${sent}; recorded ${rows}; server run:\n${lab.server!.output().slice(-3000)}`,
      );
    });
    const live = (await ctx.store.listSessionHistory({ user: 'admin' }))[0]!;
    assert.equal(live.commonName, 'admin.phone');
    assert.equal(live.deviceName, 'phone');
    assert.equal(live.endedAt, null);
    assert.match(live.virtualAddress, /^10\.140\./);
    assert.match(live.realAddress, new RegExp(`^${A.office.replace(/\./g, '\\.')}:`));

    await client!.stop(5000);
    client = undefined;
    await until(
      async () => (await ctx.store.listSessionHistory({ user: 'admin' }))[0]?.endedAt != null,
      30_000,
      'the session to be recorded as ended',
    ).catch(async (err: Error) => {
      const rows = JSON.stringify(await ctx.store.listSessionHistory());
      const notes = lab
        .server!.output()
        .split('\n')
        .filter((l) => !/MANAGEMENT/.test(l))
        .slice(-40)
        .join('\n');
      throw new Error(`${err.message}; recorded ${rows}; server run:\n${notes}`);
    });
    const ended = (await ctx.store.listSessionHistory({ user: 'admin' }))[0]!;
    assert.equal(ended.endReason, 'ended');
    assert.ok(ended.bytesIn >= floor);
  });

  it('the admin usage chart renders in Chromium; the CSV matches the recorded rows; the CLI lists them', async () => {
    await page.goto(`${server.url}/admin/usage`);
    const bars = page.locator('#chart-bytes rect[data-value]');
    assert.equal(await bars.count(), 30, 'one bar per day');
    const today = new Date().toISOString().slice(0, 10);
    const todayBar = page.locator(`#chart-bytes rect[data-day="${today}"]`);
    assert.ok(Number(await todayBar.getAttribute('data-value')) >= 18 * MB);
    const box = await todayBar.boundingBox();
    assert.ok(box && box.height > 20, `today's bar is drawn (${JSON.stringify(box)})`);
    assert.ok(await page.locator('#chart-sessions').isVisible());
    assert.match((await page.textContent('#usage-users'))!, /admin/);
    await page.locator('#usage-chart').screenshot({ path: join(SHOTS, 'usage-chart.png') });
    await page.screenshot({ path: join(SHOTS, 'usage-desktop.png'), fullPage: true });

    const csvRes = await page.request.get(`${server.url}/admin/usage.csv`);
    assert.equal(csvRes.status(), 200);
    assert.match(csvRes.headers()['content-type'] ?? '', /^text\/csv/);
    const lines = (await csvRes.text()).trim().split('\r\n');
    const rows = await ctx.store.listSessionHistory({ since: new Date(Date.now() - 30 * 86_400_000) });
    assert.equal(lines.length, rows.length + 1, 'a header and one line per recorded session');
    const header = lines[0]!.split(',');
    const first = Object.fromEntries(lines[1]!.split(',').map((v, i) => [header[i], v]));
    assert.equal(first.common_name, rows[0]!.commonName);
    assert.equal(Number(first.bytes_in), rows[0]!.bytesIn);
    assert.equal(Number(first.bytes_out), rows[0]!.bytesOut);
    assert.equal(first.end_reason, 'ended');

    await page.goto(`${server.url}/devices`);
    assert.equal(await page.locator('#my-sessions ~ .table-wrap tr[data-session]').count(), rows.length);

    const cli = JSON.parse((await lab.cli('sessions', 'history', '--user', 'admin', '--json')).stdout) as {
      commonName: string;
      bytesIn: number;
    }[];
    assert.deepEqual(
      cli.map((s) => [s.commonName, s.bytesIn]),
      rows.map((s) => [s.commonName, s.bytesIn]),
    );
    assert.deepEqual(consoleErrors, []);
  });
});
