import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { DiscoveryResult } from '../../src/cluster/index.js';
import { loadConfig } from '../../src/config/load.js';
import { logger, setLogLevel } from '../../src/lib/logger.js';
import { openContext, type AppContext } from '../../src/services/context.js';
import type { ClusterPort } from '../../src/web/cluster-port.js';
import { startServer, type RunningServer } from '../../src/web/server.js';
import type { Session, SessionsProvider } from '../../src/web/sessions-provider.js';
import {
  checkProfileCert,
  CHROMIUM,
  CHROMIUM_ARGS,
  profileInline,
  requireChromium,
  SHOTS,
  watchConsoleErrors,
} from '../helpers/browser.js';

const ADMIN_PASSWORD = 'admin password 123';
const CAROL_PASSWORD = 'carol password 456';

/** Stand-ins for the management interface and the cluster (no openvpn or Kubernetes here). */
const fakeSessions: SessionsProvider & { live: Session[] } = {
  live: [],
  async list() {
    return this.live;
  },
  async disconnect(cid: string) {
    this.live = this.live.filter((s) => s.cid !== cid);
  },
};
const fakeCluster: ClusterPort = {
  discover: async () => discovery,
  lastDiscovery: async () => discovery,
  manifests: async () => [
    { name: 'ns.yaml', yaml: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: middleware\n' },
  ],
  deploy: async (onProgress = () => undefined) => {
    onProgress('applied Namespace/middleware (created)');
    await new Promise((r) => setTimeout(r, 2500));
    onProgress('rollout ready 1/1');
    return { objects: [], rollout: { ready: true, replicas: 1, readyReplicas: 1, changed: true } };
  },
  status: async () => {
    throw new Error('this test does not read live status');
  },
};
const discovery: DiscoveryResult = {
  discoveredAt: '2026-11-27T12:00:00.000Z',
  podCidrs: ['10.244.0.0/16'],
  podCidrSource: 'kubeadm-config networking.podSubnet',
  serviceCidrs: ['10.96.0.0/12'],
  serviceCidrSource: 'ServiceCIDR kubernetes',
  dnsServer: '10.96.0.10',
  clusterDomain: 'cluster.local',
  clusterDomainSource: 'kubeadm-config networking.dnsDomain',
  nodeIps: ['172.18.12.21', '172.18.12.22'],
  sources: { pods: [{ source: 'node podCIDRs', cidrs: ['10.244.0.0/24', '10.244.1.0/24'] }], services: [] },
  warnings: [],
  overlaps: ['office LAN 10.96.8.0/24 overlaps service range 10.96.0.0/12'],
};

describe('browser: admin creates a user, the user gets a profile, the admin revokes it', function () {
  this.timeout(120_000);
  let dir: string;
  let profileDir: string;
  let ctx: AppContext;
  let server: RunningServer;
  let browser: BrowserContext;
  let page: Page;
  let level: string;
  const consoleErrors: string[] = [];

  before(async function () {
    requireChromium(this);
    level = logger.level;
    setLogLevel('error');
    dir = mkdtempSync(join(tmpdir(), 'podgate-browser-'));
    profileDir = mkdtempSync(join(tmpdir(), 'podgate-chromium-'));
    mkdirSync(SHOTS, { recursive: true });
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: dir,
        'vpn.endpoints': ['vpn.example.test'],
        'vpn.routes.pods': ['10.244.0.0/16'],
        'vpn.routes.services': ['10.96.0.0/12'],
      },
    });
    ctx = await openContext(config);
    await ctx.users.create({ actor: 'test', name: 'admin', role: 'admin', password: ADMIN_PASSWORD });
    // Some other people's devices, so the certificate table has something to show.
    for (const name of ['dana', 'erik', 'fatima']) {
      await ctx.users.create({ actor: 'test', name, role: 'user', password: ADMIN_PASSWORD });
      for (const device of ['laptop', 'phone', 'desktop']) {
        await ctx.devices.issue({
          actor: 'test',
          owner: name,
          commonName: `${name}.${device}`,
          deviceName: device,
        });
      }
    }
    await ctx.revocation.revoke({ actor: 'test', serialOrName: 'erik.phone', reason: 'keyCompromise' });
    server = await startServer({
      ctx,
      host: '127.0.0.1',
      port: 0,
      sessions: fakeSessions,
      cluster: fakeCluster,
    });
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      acceptDownloads: true,
      viewport: { width: 1280, height: 860 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    watchConsoleErrors(page, consoleErrors);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await ctx?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    if (level) setLogLevel(level);
  });

  /** Screenshots at desktop width and at 375 px (phone). */
  async function shoot(name: string): Promise<void> {
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
    await page.setViewportSize({ width: 375, height: 740 });
    await page.screenshot({ path: join(SHOTS, `${name}-375.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 860 });
  }

  /** Signs in with the keyboard only: type, Tab, type, Enter. */
  async function signIn(name: string, password: string): Promise<void> {
    await page.goto(`${server.url}/login`);
    await page.focus('#name');
    await page.keyboard.type(name);
    await page.keyboard.press('Tab');
    await page.keyboard.type(password);
    await Promise.all([page.waitForURL(`${server.url}/devices`), page.keyboard.press('Enter')]);
  }

  async function signOut(): Promise<void> {
    await Promise.all([page.waitForURL(/\/login/), page.click('form.signout button')]);
  }

  /** Presses Tab until the element with this id has focus (fails after 40 presses). */
  async function tabTo(id: string): Promise<void> {
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement?.id)) === id) return;
    }
    assert.fail(`could not reach #${id} with the Tab key`);
  }

  it('signs the admin in and creates a developer account', async () => {
    await page.goto(`${server.url}/login`);
    await shoot('login');
    await signIn('admin', ADMIN_PASSWORD);
    await page.goto(`${server.url}/admin/users`);
    await page.fill('#new-name', 'carol');
    await page.fill('#new-password', CAROL_PASSWORD);
    await page.selectOption('#new-role', 'user');
    await Promise.all([page.waitForURL(/done=user-created/), page.click('#create-user button[type=submit]')]);
    assert.match((await page.textContent('#users')) ?? '', /carol/);
    await shoot('admin-users');
    await signOut();
  });

  let serial = '';
  it('lets the developer create a device by keyboard and download a valid profile', async () => {
    await signIn('carol', CAROL_PASSWORD);
    await shoot('devices-empty');
    await page.focus('#device-name');
    await page.keyboard.type('laptop');
    await tabTo('create-device-button');
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    assert.equal(download.suggestedFilename(), 'carol.laptop.ovpn');
    const file = join(dir, 'downloaded.ovpn');
    await download.saveAs(file);
    const profile = readFileSync(file, 'utf8');
    assert.ok(profileInline(profile, 'key'), 'profile has <key>');
    serial = await checkProfileCert(dir, profile, 'carol.laptop');
    // The page reloads itself after the download and lists the device.
    await page.waitForSelector(`tr[data-serial="${serial}"]`, { timeout: 10_000 });
    assert.match((await page.textContent(`tr[data-serial="${serial}"]`)) ?? '', /valid/);
    await shoot('devices');
    await page.goto(`${server.url}/setup`);
    await shoot('setup');
    await signOut();
  });

  it('lets the admin find and revoke the certificate with a reason and a confirmation', async () => {
    fakeSessions.live = [
      {
        cid: '3',
        commonName: 'carol.laptop',
        realAddress: '198.51.100.7:51000',
        virtualAddress: '10.140.0.2',
        bytesIn: 123456,
        bytesOut: 654321,
        connectedSince: new Date(Date.now() - 600_000),
      },
    ];
    await signIn('admin', ADMIN_PASSWORD);
    await page.goto(`${server.url}/admin/certs?perPage=5`);
    assert.match((await page.textContent('.pager')) ?? '', /Page 1 of 3/);
    await shoot('admin-certs-all');
    await page.goto(`${server.url}/admin/certs?q=carol`);
    await shoot('admin-certs');
    await Promise.all([
      page.waitForURL(/\/revoke$/),
      page.click(`tr[data-serial="${serial}"] a.button.danger`),
    ]);
    await page.selectOption('#reason', 'keyCompromise');
    await shoot('admin-revoke-confirm');
    await Promise.all([page.waitForURL(/done=revoked/), page.click('#confirm-revoke')]);
    assert.match((await page.textContent(`tr[data-serial="${serial}"]`)) ?? '', /revoked/i);
    await page.goto(`${server.url}/admin/cluster`);
    await Promise.all([
      page.waitForURL(/done=discovered/),
      page.click('form[action="/admin/cluster/discover"] button'),
    ]);
    await Promise.all([
      page.waitForURL(/done=deploy-started/),
      page.click('form[action="/admin/cluster/deploy"] button'),
    ]);
    // The page shows the running deploy and follows it live (polling), ending at "done".
    assert.match((await page.textContent('#deploy-progress')) ?? '', /applied Namespace\/middleware/);
    await page.waitForFunction(
      () => /rollout ready 1\/1/.test(document.querySelector('#deploy-progress')?.textContent ?? ''),
      undefined,
      { timeout: 15_000 },
    );
    await page.waitForFunction(
      () => document.querySelector('#deploy-progress')?.getAttribute('data-state') === 'done',
      undefined,
      { timeout: 15_000 },
    );
    for (const p of ['sessions', 'audit', 'crl', 'gateways', 'cluster']) {
      await page.goto(`${server.url}/admin/${p}`);
      await shoot(`admin-${p}`);
    }
    // Disconnect a live session with the keyboard only.
    await page.goto(`${server.url}/admin/sessions`);
    await page.focus('#main');
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement?.textContent?.trim())) === 'Disconnect') break;
    }
    await Promise.all([page.waitForURL(/done=disconnected/), page.keyboard.press('Enter')]);
    assert.equal(fakeSessions.live.length, 0);
    await signOut();
  });

  it('shows the developer the device as revoked', async () => {
    await signIn('carol', CAROL_PASSWORD);
    assert.match((await page.textContent(`tr[data-serial="${serial}"]`)) ?? '', /revoked/);
    assert.equal(
      await page.locator(`tr[data-serial="${serial}"] a.button.danger`).count(),
      0,
      'no revoke button on a revoked device',
    );
    await shoot('devices-revoked');
  });

  it('had no console errors (no CSP violations, no script errors) on any page', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
