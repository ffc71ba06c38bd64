/**
 * What the headless-Chromium suites share: how Chromium is started, where screenshots go, the check
 * that podgate's pages log no console errors, and the openssl check of a downloaded profile.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { exec } from '../../src/lib/exec.js';

/** Debian's chromium package. */
export const CHROMIUM = '/usr/bin/chromium';

/** In a `before` hook: skips without Chromium; in CI (`CI=true`) its absence fails instead. */
export function requireChromium(ctx: Mocha.Context): void {
  if (existsSync(CHROMIUM)) return;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
  ctx.skip();
}

/** Headless, no sandbox (root), and nothing that reaches the network on its own. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** Screenshots for review (kept after the run, not compared). */
export const SHOTS = join(process.cwd(), 'test-artifacts', 'screenshots');

export interface ConsoleWatch {
  /** Count only messages logged by pages under this origin (other sites, e.g. a sign-in provider, are not ours). */
  origin?: string;
  /** Messages a suite provokes on purpose (a refused page's 403). */
  ignore?: RegExp;
}

/**
 * Collects the page's console errors and uncaught script errors into `errors`. CSP violations and
 * script errors show up there: a suite ends by asserting `errors` is empty.
 */
export function watchConsoleErrors(page: Page, errors: string[], watch: ConsoleWatch = {}): void {
  const ours = (url: string): boolean => !watch.origin || url.startsWith(watch.origin);
  page.on('console', (msg) => {
    if (msg.type() !== 'error' || watch.ignore?.test(msg.text())) return;
    const url = msg.location().url;
    if (ours(url)) errors.push(`${msg.text()} (${url})`);
  });
  page.on('pageerror', (err) => {
    if (ours(page.url())) errors.push(`${err.message} (${page.url()})`);
  });
}

/** Extracts one inline block (<ca>, <cert>, <key>) from a profile. */
export function profileInline(profile: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>\\n([\\s\\S]*?)</${tag}>`).exec(profile)?.[1];
}

/**
 * Checks a downloaded profile with the openssl CLI: its certificate verifies against its own CA and is
 * issued to `commonName`. Writes ca.pem and cert.pem into `dir`; returns the certificate's serial (hex).
 */
export async function checkProfileCert(dir: string, profile: string, commonName: string): Promise<string> {
  const ca = profileInline(profile, 'ca');
  const cert = profileInline(profile, 'cert');
  assert.ok(ca && cert, 'profile has <ca> and <cert>');
  writeFileSync(join(dir, 'ca.pem'), ca);
  writeFileSync(join(dir, 'cert.pem'), cert);
  const verify = await exec(['openssl', 'verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'cert.pem')]);
  assert.match(verify.stdout, /cert\.pem: OK/);
  const info = await exec(['openssl', 'x509', '-noout', '-subject', '-serial', '-in', join(dir, 'cert.pem')]);
  assert.match(info.stdout, new RegExp(`CN ?= ?${commonName.replace(/\./g, '\\.')}\\b`));
  return /serial=([0-9A-F]+)/.exec(info.stdout)![1]!;
}

/**
 * An executable for playwright's `executablePath` that starts Debian's Chromium inside network namespace
 * `ns` (`ip netns exec` execs in place, so the pipe playwright drives it through is kept): its fetches
 * then use that namespace's routes, e.g. a VPN client's tunnel. Written into `dir` (the caller's temp dir).
 */
export function chromiumInNamespace(dir: string, ns: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(ns)) throw new Error(`unexpected namespace name ${ns}`);
  const path = join(dir, `chromium-in-${ns}`);
  writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`, { mode: 0o700 });
  return path;
}
