import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { loadConfig } from '../../src/config/load.js';
import { logger, setLogLevel } from '../../src/lib/logger.js';
import { openContext, type AppContext } from '../../src/services/context.js';
import { startServer, type RunningServer } from '../../src/web/server.js';
import { CHROMIUM, CHROMIUM_ARGS, requireChromium, SHOTS, watchConsoleErrors } from '../helpers/browser.js';

const PASSWORD = 'access password 123';

describe('browser: the Access page (apply with an error shown, then fixed) and My access', function () {
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
    ctx = await openContext(
      loadConfig({ env: {}, overrides: { dataDir: dir, 'vpn.endpoints': ['vpn.example.test'] } }),
    );
    await ctx.users.create({ actor: 'test', name: 'admin', role: 'admin', password: PASSWORD });
    await ctx.users.create({ actor: 'test', name: 'bob', role: 'user', password: PASSWORD });
    await ctx.groups.create({ actor: 'test', name: 'a' });
    await ctx.groups.addMember({ actor: 'test', group: 'a', user: 'bob' });
    server = await startServer({ ctx, host: '127.0.0.1', port: 0 });
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 860 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    // the refused apply answers 400 on purpose
    watchConsoleErrors(page, consoleErrors, { ignore: /status of 400/ });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await ctx?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    if (level) setLogLevel(level);
  });

  async function signIn(name: string): Promise<void> {
    await page.goto(`${server.url}/login`);
    await page.fill('#name', name);
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(/\/devices$/), page.keyboard.press('Enter')]);
  }

  it('an admin applies rules with a bad selector, sees the field named, fixes it, and asks who reaches team-a', async () => {
    await signIn('admin');
    await Promise.all([page.waitForURL(/\/admin\/access$/), page.click('nav a[href="/admin/access"]')]);
    const bad = [
      'rules:',
      '  - name: team-a',
      '    subjects: [{ kind: group, name: a }]',
      '    destinations:',
      '      - { kind: pod, namespace: team-a, selector: { matchLabels: { "bad key": web } } }',
    ].join('\n');
    await page.fill('#rules', bad);
    await page.click('#apply-rules');
    const error = page.locator('#form-error');
    await error.waitFor();
    assert.match(await error.innerText(), /^rules\[0\]\.destinations\[0\]\.selector\.matchLabels: /);
    assert.equal(await page.inputValue('#rules'), bad, 'the text typed is kept');
    assert.equal((await ctx.access.rules()).length, 0, 'nothing applied');
    await page.screenshot({ path: join(SHOTS, 'access-error-desktop.png'), fullPage: true });
    await page.fill('#rules', bad.replace('"bad key"', 'app'));
    await Promise.all([page.waitForURL(/done=access-applied/), page.click('#apply-rules')]);
    assert.deepEqual(
      (await ctx.access.rules()).map((r) => r.name),
      ['team-a'],
    );
    await page.fill('#w-dest', 'ns/team-a');
    await page.click('#who-form button');
    const who = page.locator('#who-answer');
    await who.waitFor();
    // a pod selector is not the whole namespace: no rule reaches ns/team-a as such
    assert.match(await who.innerText(), /No rule reaches it/);
    await page.fill('#q-user', 'bob');
    await page.click('#reach-form button');
    assert.match(
      await page.locator('#reach-answer').innerText(),
      /team-a \(via group a; all protocols and ports\): pods in team-a matching app=web/,
    );
  });

  it('a developer sees My access', async () => {
    await page.context().clearCookies();
    await signIn('bob');
    await Promise.all([page.waitForURL(/\/access$/), page.click('nav a[href="/access"]')]);
    assert.match(
      await page.locator('#my-access').innerText(),
      /team-a[\s\S]*group a[\s\S]*pods in team-a matching app=web/,
    );
    await page.screenshot({ path: join(SHOTS, 'my-access-desktop.png'), fullPage: true });
    assert.deepEqual(consoleErrors, []);
  });
});
