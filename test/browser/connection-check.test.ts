/**
 * "Check my connection" in headless Chromium running inside the office namespace, so its fetches use the
 * VPN client's tunnel like a developer's browser does. The manager (`podgate serve`) runs in the "pod"
 * namespace as it runs in a cluster, published to the office on the node's address (a NodePort stand-in)
 * and reachable through the tunnel by its ClusterIP (the node DNATs 10.96.0.10 to the pod, like
 * kube-proxy) and by a cluster DNS name (a DNS server in the pod namespace; the office's resolv.conf
 * points at it, as systemd-resolved does with a pushed DNS server). `server run` in the node namespace
 * answers on its tunnel-side address, which stands in for a server pod IP in local mode.
 *
 * Green: a client with the full profile. Red: the same profile with `route-nopull` (the pushed routes
 * are missing): the tunnel check stays green, the cluster checks turn red, and the page shows the
 * re-import fix.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CLI } from '../helpers/cli.js';
import {
  CHROMIUM_ARGS,
  chromiumInNamespace,
  requireChromium,
  SHOTS,
  watchConsoleErrors,
} from '../helpers/browser.js';
import { OFFICE_NODE_POD as A, startDnsServer, type SpawnedProcess } from '../helpers/netns.js';
import { waitClientConnected } from '../helpers/openvpn.js';
import { ADMIN_PASSWORD, requireNetns, VpnLab } from '../helpers/topology.js';

const WEB_PORT = 18080;
const PROBE_PORT = 18099;
const SERVICE_NAME = 'podgate-manager.podgate.svc.cluster.local';
const PUBLIC_URL = `http://${A.node}:${WEB_PORT}`;

describe('browser: Check my connection through the tunnel', function () {
  this.timeout(180_000);
  let lab: VpnLab;
  let serve: SpawnedProcess | undefined;
  let client: SpawnedProcess | undefined;
  let browser: BrowserContext | undefined;
  let page: Page;
  let work: string;
  let netnsEtc: string | undefined;
  let madeEtcNetns = false;
  const consoleErrors: string[] = [];

  before(async function () {
    requireChromium(this);
    await requireNetns(this);
    lab = await VpnLab.create({
      prefix: 'chk',
      services: true,
      vpn: ['  nat: true'],
      top: [
        `web: { publicUrl: "${PUBLIC_URL}" }`,
        `connectionCheck: { port: ${PROBE_PORT}, serviceIpUrl: "http://${A.clusterIp}:${WEB_PORT}", serviceDnsUrl: "http://${SERVICE_NAME}:${WEB_PORT}" }`,
      ],
    });
    await lab.init();
    await lab.issue('laptop');
    await lab.startServerRun();
    // The manager "in the cluster": serve in the pod namespace, published on the node's address.
    serve = lab.topo.spawn(
      'pod',
      [
        process.execPath,
        CLI,
        '--config',
        lab.cfgFile,
        'serve',
        '--host',
        '0.0.0.0',
        '--port',
        String(WEB_PORT),
      ],
      {
        logFile: join(lab.work, 'serve.log'),
        env: { ...process.env, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', PODGATE_LOG_LEVEL: 'warn' },
      },
    );
    await serve.waitFor(/podgate web app on/, 30_000);
    const dnat = ['-t', 'nat', '-A', 'PREROUTING', '-d', A.node, '-p', 'tcp', '--dport', String(WEB_PORT)];
    await lab.topo.iptables('node', [...dnat, '-j', 'DNAT', '--to-destination', `${A.pod}:${WEB_PORT}`]);
    await lab.topo.iptables('node', [
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-s',
      `${A.office}/24`,
      '-d',
      A.pod,
      '-j',
      'MASQUERADE',
    ]);
    // Cluster DNS in the pod namespace; the office uses it (ip netns exec bind-mounts /etc/netns/NS/*).
    await startDnsServer(lab.topo.name('pod'), A.pod, { [SERVICE_NAME]: A.clusterIp });
    madeEtcNetns = !existsSync('/etc/netns');
    netnsEtc = join('/etc/netns', lab.topo.name('office'));
    mkdirSync(netnsEtc, { recursive: true });
    writeFileSync(join(netnsEtc, 'resolv.conf'), `nameserver ${A.pod}\noptions timeout:1 attempts:1\n`);

    work = mkdtempSync(join(tmpdir(), 'podgate-chromium-'));
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: chromiumInNamespace(work, lab.topo.name('office')),
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    // Failed probes log net errors on purpose (the red cases). Chromium also notes that it ignores the
    // Cross-Origin-Opener-Policy header on a plain-http origin that is not loopback (this suite's
    // NodePort stand-in). Script errors and CSP violations still count.
    watchConsoleErrors(page, consoleErrors, {
      ignore: /Failed to load resource|net::ERR_|Cross-Origin-Opener-Policy header has been ignored/,
    });
  });

  after(async () => {
    await client?.stop(5000).catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await serve?.stop(5000).catch(() => undefined);
    await lab?.close();
    if (netnsEtc) rmSync(netnsEtc, { recursive: true, force: true });
    // /etc/netns only when this suite made it and nothing else (another suite's namespace) is in it now
    if (madeEtcNetns)
      try {
        rmdirSync('/etc/netns');
      } catch {
        /* not empty: someone else's */
      }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function runCheck(): Promise<Record<string, string>> {
    await page.goto(`${PUBLIC_URL}/devices`);
    await page.click('#check-connection');
    await page.waitForSelector('#check-list[data-done="true"]', { timeout: 30_000 });
    const states = await page.$$eval('#check-list li', (lis) =>
      lis.map((li) => [li.getAttribute('data-check') ?? '', li.getAttribute('data-state') ?? '']),
    );
    return Object.fromEntries(states);
  }

  it('signs in from the office over the LAN (the page is reachable without the tunnel)', async () => {
    await page.goto(`${PUBLIC_URL}/login`);
    await page.fill('#name', 'admin');
    await page.fill('#password', ADMIN_PASSWORD);
    await Promise.all([page.waitForURL(`${PUBLIC_URL}/devices`), page.press('#password', 'Enter')]);
    const kinds = await page.$$eval('#check-list li', (lis) =>
      lis.map((li) => li.getAttribute('data-check')),
    );
    assert.deepEqual(kinds, ['tunnel', 'service-ip', 'service-dns']);
    assert.match((await page.textContent('#check-list'))!, /stands in for a server pod IP/);
  });

  it('not connected: every check is red and the page says to connect', async () => {
    const s = await runCheck();
    assert.deepEqual(s, { tunnel: 'failed', 'service-ip': 'failed', 'service-dns': 'failed' });
    assert.ok(await page.isVisible('#fix-tunnel'));
    assert.ok(!(await page.isVisible('#check-ok')));
  });

  it('green with a connected client: tunnel, ClusterIP and cluster DNS name all answer', async () => {
    client = lab.client('laptop');
    await waitClientConnected(client, 30_000);
    const s = await runCheck();
    assert.deepEqual(s, { tunnel: 'ok', 'service-ip': 'ok', 'service-dns': 'ok' }, JSON.stringify(s));
    assert.ok(await page.isVisible('#check-ok'));
    for (const fix of ['#fix-tunnel', '#fix-route', '#fix-dns']) assert.ok(!(await page.isVisible(fix)), fix);
    await page.locator('#connection-check').screenshot({ path: join(SHOTS, 'connection-check-green.png') });
    await client.stop(5000);
    client = undefined;
  });

  it('red with a client that has no route: the re-import fix is shown', async () => {
    client = lab.client('laptop-noroute', { profile: `${lab.profiles.laptop!}route-nopull\n` });
    await waitClientConnected(client, 30_000);
    const s = await runCheck();
    assert.deepEqual(s, { tunnel: 'ok', 'service-ip': 'failed', 'service-dns': 'failed' }, JSON.stringify(s));
    assert.ok(await page.isVisible('#fix-route'));
    assert.match((await page.textContent('#fix-route'))!, /Re-import the profile/);
    assert.ok(!(await page.isVisible('#check-ok')));
    assert.ok(!(await page.isVisible('#fix-tunnel')));
    await page.locator('#connection-check').screenshot({ path: join(SHOTS, 'connection-check-red.png') });
    assert.deepEqual(consoleErrors, []);
  });
});
