// Issuance under attack, against the real `podgate serve` process on loopback (issue 11 items 1 and 7).
// 1. Disable race: a developer's API token sends 6 parallel rsa-3072 creates, the admin disables them 150 ms later.
//    Printed: the disable's answer and how many certificates it revoked, the creates' answers, and how
//    many issued certificates still verify (`openssl verify -crl_check`) against the live CRL.
// 2. Flood: one user keeps sending waves of 12 parallel rsa-3072 creates while the admin signs in again
//    and again. Printed: admin sign-in p50/p95 idle (baseline, same run) and during the flood.
// Figures are printed, never enforced. Run: npm run build && node dist/bench/issue-flood.js
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { exec } from '../src/lib/exec.js';
import { setLogLevel } from '../src/lib/logger.js';
import { startServe as startProcess } from '../test/helpers/serve.js';
import { openContext } from '../src/services/context.js';

const CLI = fileURLToPath(new URL('../bundle/podgate.js', import.meta.url));
const PASSWORD = 'bench password 123 flood';

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

async function prepare(dataDir: string): Promise<void> {
  setLogLevel('warn');
  const config = loadConfig({
    env: {},
    overrides: { dataDir, 'vpn.endpoints': ['vpn.example.test'], 'ca.keyType': 'ec-p384' },
  });
  const ctx = await openContext(config);
  try {
    await ctx.users.create({ actor: 'bench', name: 'admin', role: 'admin', password: PASSWORD });
    for (const name of ['dev', 'flood'])
      await ctx.users.create({ actor: 'bench', name, role: 'user', password: PASSWORD });
    await ctx.server.ensure();
  } finally {
    await ctx.close();
  }
}

function startServe(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  return startProcess({ dataDir, env: { PODGATE_LOG_LEVEL: 'error' } });
}

interface Session {
  cookie: string;
  csrf: string;
}

async function login(url: string, name: string): Promise<{ session: Session; ms: number }> {
  const t = performance.now();
  const res = await fetch(`${url}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: url },
    body: JSON.stringify({ name, password: PASSWORD }),
  });
  const body = (await res.json()) as { csrfToken: string };
  const ms = performance.now() - t;
  if (res.status !== 200) throw new Error(`login ${name}: ${res.status}`);
  const cookie = /podgate_sid=[^;]+/.exec(res.headers.get('set-cookie') ?? '')![0];
  return { session: { cookie, csrf: body.csrfToken }, ms };
}

async function call(url: string, s: Session, method: string, path: string, body: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      cookie: s.cookie,
      'x-csrf-token': s.csrf,
      'content-type': 'application/json',
      accept: 'application/json',
      origin: url,
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

function tally(statuses: number[]): string {
  const counts = new Map<number, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n}×${s}`).join(' ');
}

/** An API token for `user` from the real CLI (`podgate token create`), as the issue's repro used. */
async function apiToken(dataDir: string, user: string): Promise<string> {
  const r = await exec([process.execPath, CLI, 'token', 'create', user, '--data-dir', dataDir], {
    check: false,
  });
  const token = /pgt_[A-Za-z0-9_-]+/.exec(r.stdout)?.[0];
  if (!token) throw new Error(`token create failed: ${r.stdout} ${r.stderr}`);
  return token;
}

async function disableRace(url: string, dir: string, token: string) {
  const admin = (await login(url, 'admin')).session;
  const creates = Array.from({ length: 6 }, async (_, i) => {
    const res = await fetch(`${url}/api/v1/devices`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify({ name: `race${i}`, keyType: 'rsa-3072' }),
    });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
  });
  await new Promise((r) => setTimeout(r, 150));
  const disable = await call(url, admin, 'PATCH', '/api/v1/users/dev', { disabled: true });
  const audit = await fetch(`${url}/api/v1/audit?action=user.disable`, { headers: { cookie: admin.cookie } });
  const revokedAtDisable = ((await audit.json()) as { items: { details: { revoked: number } }[] }).items[0]
    ?.details.revoked;
  const results = await Promise.all(creates);
  // The live CRL, after everything has finished.
  writeFileSync(join(dir, 'crl.pem'), await (await fetch(`${url}/crl.pem`)).text());
  let stillValid = 0;
  for (const [i, r] of results.entries()) {
    if (r.status !== 201) continue;
    const profile = String(r.body.profile);
    const block = (tag: string) =>
      new RegExp(`<${tag}>\\n([\\s\\S]*?)\\n</${tag}>`).exec(profile)![1]! + '\n';
    writeFileSync(join(dir, 'ca.pem'), block('ca'));
    writeFileSync(join(dir, `race${i}.pem`), block('cert'));
    const v = await exec(
      [
        'openssl',
        'verify',
        '-crl_check',
        '-CAfile',
        join(dir, 'ca.pem'),
        '-CRLfile',
        join(dir, 'crl.pem'),
        join(dir, `race${i}.pem`),
      ],
      { check: false },
    );
    if (v.code === 0) stillValid++;
  }
  return {
    disable: disable.status,
    revokedAtDisable,
    creates: tally(results.map((r) => r.status)),
    stillValid,
  };
}

async function signInTimes(url: string, n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push((await login(url, 'admin')).ms);
  return times;
}

async function flood(url: string) {
  const idle = await signInTimes(url, 20);
  const user = (await login(url, 'flood')).session;
  const statuses: number[] = [];
  let running = true;
  let n = 0;
  const waves = (async () => {
    while (running) {
      const wave = await Promise.all(
        Array.from({ length: 12 }, () =>
          call(url, user, 'POST', '/api/v1/devices', { name: `f${n++}`, keyType: 'rsa-3072' }),
        ),
      );
      statuses.push(...wave.map((r) => r.status));
    }
  })();
  await new Promise((r) => setTimeout(r, 300)); // the first wave is in key generation
  const busy = await signInTimes(url, 20);
  running = false;
  await waves;
  return { idle, busy, creates: tally(statuses) };
}

export async function runIssueFloodBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-flood-'));
  let child: ChildProcess | undefined;
  try {
    await prepare(join(dir, 'data'));
    const token = await apiToken(join(dir, 'data'), 'dev');
    const served = await startServe(join(dir, 'data'));
    child = served.child;
    const race = await disableRace(served.url, dir, token);
    console.log(
      `disable race: PATCH disabled -> ${race.disable}, revoked ${race.revokedAtDisable} at disable; ` +
        `6 rsa-3072 creates -> ${race.creates}; certificates valid against the live CRL: ${race.stillValid}`,
    );
    const f = await flood(served.url);
    const fmt = (t: number[]) => `p50 ${pct(t, 50).toFixed(0)} ms, p95 ${pct(t, 95).toFixed(0)} ms`;
    console.log(`admin sign-in idle (baseline): ${fmt(f.idle)}`);
    console.log(`admin sign-in while one user floods rsa-3072 creates: ${fmt(f.busy)}`);
    console.log(
      `  ratio p95 flood/idle: ${(pct(f.busy, 95) / pct(f.idle, 95)).toFixed(1)}×; flood answers: ${f.creates}`,
    );
  } finally {
    child?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await runIssueFloodBench();
