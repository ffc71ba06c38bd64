import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { loadConfig } from '../../src/config/load.js';
import { exec } from '../../src/lib/exec.js';
import { logger, setLogLevel } from '../../src/lib/logger.js';
import { openContext, type AppContext } from '../../src/services/context.js';
import { openOidc, type OidcParts } from '../../src/services/oidc.js';
import { createApp } from '../../src/web/app.js';
import { startTestProvider, type TestProvider } from '../helpers/oidc-provider.js';
import { reservePort } from '../helpers/oidc-setup.js';
import {
  checkProfileCert,
  CHROMIUM,
  CHROMIUM_ARGS,
  requireChromium,
  SHOTS,
  watchConsoleErrors,
} from '../helpers/browser.js';

describe('browser: single sign-on through a real OpenID provider (oidc-provider login page)', function () {
  this.timeout(120_000);
  let dir: string;
  let ctx: AppContext;
  let oidc: OidcParts;
  let provider: TestProvider;
  let port: Awaited<ReturnType<typeof reservePort>>;
  let browser: Browser;
  let level: string;
  const contexts: BrowserContext[] = [];
  const consoleErrors: string[] = [];

  before(async function () {
    requireChromium(this);
    level = logger.level;
    setLogLevel('error');
    dir = mkdtempSync(join(tmpdir(), 'podgate-browser-sso-'));
    mkdirSync(SHOTS, { recursive: true });
    port = await reservePort();
    const redirectUrl = `${port.url}/auth/oidc/callback`;
    provider = await startTestProvider({ redirectUris: [redirectUrl] });
    provider.accounts.set('u-dev', { preferred_username: 'dev', groups: ['vpn-users'] });
    provider.accounts.set('u-boss', { preferred_username: 'boss', groups: ['vpn-users', 'vpn-admins'] });
    provider.accounts.set('u-leaver', { preferred_username: 'leaver', groups: ['vpn-users'] });
    const secretFile = join(dir, 'client-secret');
    writeFileSync(secretFile, 'podgate-test-client-secret\n', { mode: 0o600 });
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: join(dir, 'data'),
        'vpn.endpoints': ['vpn.example.test'],
        'auth.local': 'admins-only',
        'auth.oidc': {
          issuer: provider.issuer,
          clientId: 'podgate',
          clientSecretFile: secretFile,
          displayName: 'Acme ID',
          scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
          allowedGroups: ['vpn-users'],
          adminGroups: ['vpn-admins'],
          redirectUrl,
        },
      },
    });
    ctx = await openContext(config);
    oidc = openOidc(ctx)!;
    port.server.on('request', createApp({ ctx, oidc }));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await port?.close();
    await provider?.close();
    await ctx?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (level) setLogLevel(level);
  });

  /** A fresh browser profile per person (the provider remembers who signed in). */
  async function person(): Promise<Page> {
    const c = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 860 } });
    contexts.push(c);
    const page = await c.newPage();
    // the 403s this test provokes on purpose (admin page as a developer, refused sign-in) are not errors
    watchConsoleErrors(page, consoleErrors, { origin: port.url, ignore: /status of 403/ });
    return page;
  }

  /**
   * Clicks "Sign in with Acme ID", types the account at the provider's own login page, confirms its
   * consent page, and waits until the browser is back at podgate.
   */
  async function signIn(page: Page, login: string, shots?: string, expectSignedIn = true): Promise<void> {
    await page.goto(`${port.url}/login`);
    if (shots) await page.screenshot({ path: join(SHOTS, `${shots}-login.png`), fullPage: true });
    await Promise.all([page.waitForURL(`${provider.issuer}/**`), page.click('#oidc-signin')]);
    // the provider's pages: its login form (unless it remembers the person), then its consent form
    for (let i = 0; i < 4 && page.url().startsWith(provider.issuer); i++) {
      await page.waitForLoadState('load');
      const here = page.url();
      if (await page.locator('input[name="login"]').count()) {
        await page.fill('input[name="login"]', login);
        await page.fill('input[name="password"]', 'any password');
        if (shots) await page.screenshot({ path: join(SHOTS, `${shots}-provider.png`), fullPage: true });
      }
      await Promise.all([page.waitForURL((u) => u.href !== here), page.click('button[type="submit"]')]);
    }
    assert.ok(page.url().startsWith(port.url), `back at podgate, not at ${page.url()}`);
    // signed in: the "Signed in" page hops on to My devices by itself; wait for that hop to finish
    if (expectSignedIn) await page.waitForURL(`${port.url}/devices`, { waitUntil: 'load' });
    else await page.waitForLoadState('load');
  }

  async function crlText(): Promise<string> {
    const pem = await (await fetch(`${port.url}/crl.pem`)).text();
    return (await exec(['openssl', 'crl', '-noout', '-text'], { input: pem })).stdout;
  }

  let devPage: Page;
  let devSerial = '';

  it('a developer signs in at the provider, lands on My devices, and downloads a valid profile', async () => {
    devPage = await person();
    await signIn(devPage, 'u-dev', 'sso');
    await devPage.waitForURL(`${port.url}/devices`);
    assert.equal(await devPage.textContent('h1'), 'My devices');
    await devPage.fill('#device-name', 'laptop');
    const [download] = await Promise.all([
      devPage.waitForEvent('download'),
      devPage.click('#create-device-button'),
    ]);
    assert.equal(download.suggestedFilename(), 'dev.laptop.ovpn');
    const file = join(dir, 'dev.ovpn');
    await download.saveAs(file);
    devSerial = await checkProfileCert(dir, readFileSync(file, 'utf8'), 'dev.laptop');
    await devPage.waitForSelector(`tr[data-serial="${devSerial}"]`, { timeout: 10_000 });
    await devPage.screenshot({ path: join(SHOTS, 'sso-devices.png'), fullPage: true });
    // not an admin: the admin pages are refused
    const admin = await devPage.goto(`${port.url}/admin/users`);
    assert.equal(admin?.status(), 403);
  });

  it('an admin-group member sees the admin pages', async () => {
    const page = await person();
    await signIn(page, 'u-boss');
    const res = await page.goto(`${port.url}/admin/users`);
    assert.equal(res?.status(), 200);
    assert.match((await page.textContent('#users')) ?? '', /dev/);
    await page.screenshot({ path: join(SHOTS, 'sso-admin-users.png'), fullPage: true });
  });

  it('removed from the allowed group: refused and disabled at the next sign-in, certificate in the CRL', async () => {
    provider.accounts.set('u-dev', { preferred_username: 'dev', groups: ['marketing'] });
    await Promise.all([devPage.waitForURL(/\/login/), devPage.click('form.signout button')]);
    await signIn(devPage, 'u-dev', undefined, false);
    assert.match(
      (await devPage.textContent('.error-msg')) ?? '',
      /not in a group allowed to use podgate: ask your admin to add you to "vpn-users"/,
    );
    await devPage.screenshot({ path: join(SHOTS, 'sso-refused.png'), fullPage: true });
    assert.equal((await ctx.store.getUserByName('dev'))!.disabled, true);
    assert.equal((await ctx.store.getCert(devSerial))!.status, 'revoked');
    assert.match(await crlText(), new RegExp(`Serial Number: ${devSerial}`));
    // and the session is gone: My devices sends the browser to the sign-in page
    await devPage.goto(`${port.url}/devices`);
    assert.match(devPage.url(), /\/login/);
  });

  it('a leaver deleted at the provider is disabled by the sync job; certificate in the CRL', async () => {
    const page = await person();
    await signIn(page, 'u-leaver');
    await page.fill('#device-name', 'phone');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#create-device-button'),
    ]);
    assert.equal(download.suggestedFilename(), 'leaver.phone.ovpn');
    const serial = (await ctx.store.listCerts({ search: 'leaver.phone', limit: 1 })).items[0]!.serial;
    provider.accounts.delete('u-leaver');
    const result = await oidc.sync();
    assert.deepEqual(
      result.find((e) => e.user === 'leaver'),
      { user: 'leaver', outcome: 'disabled', detail: result.find((e) => e.user === 'leaver')!.detail },
    );
    assert.equal((await ctx.store.getUserByName('leaver'))!.disabled, true);
    assert.equal((await ctx.store.getCert(serial))!.status, 'revoked');
    assert.match(await crlText(), new RegExp(`Serial Number: ${serial}`));
    await page.goto(`${port.url}/devices`);
    assert.match(page.url(), /\/login/, 'signed out everywhere once disabled');
  });

  it('had no console errors (no CSP violations, no script errors) on podgate pages', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
