// End-to-end service benchmarks: what a user waits for (profile = key + certificate + store row + rendered
// .ovpn), and revoke + re-signed CRL at 10,000 revoked certificates. Baselines are measured in the same run.
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { openContext, type AppContext } from '../src/services/context.js';
import { setLogLevel } from '../src/lib/logger.js';
import { loadTemplate } from '../src/lib/templates.js';
import { renderClientProfile } from '../src/profiles/client-profile.js';
import { wrapTlsCryptV2ClientKey } from '../src/pki/tls-crypt.js';
import { median, p95 } from './stats.js';

const genKeyPair = promisify(generateKeyPair);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** A fresh data dir; `seed` fills the store, then the context is reopened as a restarted server would be. */
async function withContext<T>(
  fn: (ctx: AppContext) => Promise<T>,
  seed?: (ctx: AppContext) => Promise<void>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-'));
  setLogLevel('error');
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: join(dir, 'data'),
      'vpn.endpoints': ['172.18.12.21', '172.18.12.22'],
      'vpn.routes.pods': ['10.244.0.0/16'],
    },
  });
  let ctx = await openContext(config);
  try {
    await ctx.users.create({ actor: 'bench', name: 'bench', role: 'user' });
    await ctx.server.ensure();
    if (seed) {
      await seed(ctx);
      await ctx.close();
      ctx = await openContext(config);
    }
    return await fn(ctx);
  } finally {
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runServicesBench(): Promise<Record<string, number>> {
  const results: Record<string, number> = {};
  await withContext(async (ctx) => {
    let n = 0;
    const issue = (keyType: string) =>
      ctx.devices.issue({ actor: 'bench', owner: 'bench', commonName: `b${n++}`, keyType });
    for (let i = 0; i < 20; i++) await issue('ec-p256'); // warm-up
    const ec: number[] = [];
    for (let i = 0; i < 300; i++) ec.push(await timed(() => issue('ec-p256')));
    results.ecProfileMedianMs = median(ec);
    results.ecProfileP95Ms = p95(ec);
    // The same work without the durable store commit (synchronous=FULL fsync): key + cert + tls-crypt-v2 + .ovpn.
    const identity = await ctx.server.ensure();
    const template = loadTemplate('client.ovpn.hbs');
    const pure: number[] = [];
    for (let i = 0; i < 300; i++) {
      pure.push(
        await timed(async () => {
          const c = await ctx.ca.issue({
            kind: 'client',
            commonName: `p${i}`,
            days: 365,
            keyType: 'ec-p256',
          });
          renderClientProfile({
            template,
            commonName: `p${i}`,
            serverName: ctx.config.vpn.serverName,
            remotes: [{ host: '172.18.12.21', port: 30030, proto: 'udp' }],
            caPem: ctx.ca.certPem,
            certPem: c.certPem,
            keyPem: c.keyPem,
            tlsCryptV2KeyPem: wrapTlsCryptV2ClientKey(identity.tlsCryptV2ServerKeyPem),
            issuedAt: c.notBefore,
            notAfter: c.notAfter,
          });
        }),
      );
    }
    results.ecPureProfileMedianMs = median(pure);
    // Interleave RSA profiles with bare native key generation so both see the same machine load. RSA key
    // generation time varies a lot (random prime search), so many samples are needed for stable medians.
    const rsa: number[] = [];
    const native: number[] = [];
    for (let i = 0; i < 100; i++) {
      native.push(await timed(() => genKeyPair('rsa', { modulusLength: 2048 })));
      rsa.push(await timed(() => issue('rsa-2048')));
    }
    // What podgate adds beside the key generation itself: certificate for an existing RSA-2048 key + store.
    const { publicKey } = await genKeyPair('rsa', { modulusLength: 2048 });
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const besideKeygen: number[] = [];
    for (let i = 0; i < 100; i++) {
      besideKeygen.push(
        await timed(() => ctx.ca.issue({ kind: 'client', commonName: `k${i}`, days: 365, publicKeyPem })),
      );
    }
    results.rsaWorkBesideKeygenMedianMs = median(besideKeygen);
    results.rsaProfileMedianMs = median(rsa);
    results.nativeRsaKeygenMedianMs = median(native);
  });
  // 10,000 revoked rows, inserted directly (issuing them one by one would only time the setup).
  const seed10k = async (ctx: AppContext) => {
    const { store } = ctx;
    const owner = (await store.getUserByName('bench'))!;
    const cert = (await ctx.devices.issue({ actor: 'bench', owner: 'bench', commonName: 'template' })).cert;
    await store.transaction(async (tx) => {
      for (let i = 0; i < 10_000; i++) {
        const serial = (BigInt(i + 1) << 64n).toString(16).toUpperCase().padStart(32, '0');
        await tx.insertCert({
          ...cert,
          serial,
          commonName: `r${i}`,
          deviceName: `r${i}`,
          ownerId: owner!.id,
        });
        await tx.markRevoked(serial, 'superseded', new Date());
      }
    });
  };
  await withContext(async (ctx) => {
    const { store } = ctx;
    const live: string[] = [];
    for (let i = 0; i < 30; i++)
      live.push(
        (await ctx.devices.issue({ actor: 'bench', owner: 'bench', commonName: `v${i}` })).cert.serial,
      );
    const revoke: number[] = [];
    for (const serial of live)
      revoke.push(await timed(() => ctx.revocation.revoke({ actor: 'bench', serialOrName: serial })));
    results.revokeWith10kMedianMs = median(revoke);
    results.revokeWith10kP95Ms = p95(revoke);
    const entries = (await store.listRevoked()).map((r) => ({
      serial: r.serial,
      revokedAt: r.revokedAt!,
      reason: r.revocationReason!,
    }));
    // Cold builds (new entries each time: no encoding cache) show the linear scaling of the builder itself.
    for (const size of [1000, 5000, 10000]) {
      const slice = entries.slice(0, size);
      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        const fresh = slice.map((e) => ({
          ...e,
          revokedAt: new Date(e.revokedAt.getTime() - (i + 1) * 1000),
        }));
        times.push(
          await timed(async () => ctx.ca.buildCrl({ number: 99, entries: fresh, nextUpdateDays: 30 })),
        );
      }
      results[`crlBuild${size}MedianMs`] = median(times);
    }
    results.revokedInCrl = entries.length;
  }, seed10k);
  return results;
}

function print(r: Record<string, number>): void {
  const f = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(2)} ms`);
  console.log(
    '\n== podgate services (end to end: key + certificate + store row + audit + rendered .ovpn) ==',
  );
  console.log(
    `ec-p256 profile (no store) median ${f(r.ecPureProfileMedianMs)}   (key + cert + tls-crypt-v2 + .ovpn; target ≤ 3 ms)`,
  );
  console.log(
    `ec-p256 profile, durable   median ${f(r.ecProfileMedianMs)}   p95 ${f(r.ecProfileP95Ms)}   (+ fsync'ed SQLite row and audit)`,
  );
  console.log(`rsa-2048 profile           median ${f(r.rsaProfileMedianMs)}`);
  console.log(`native RSA-2048 keygen     median ${f(r.nativeRsaKeygenMedianMs)}   (same run, interleaved)`);
  console.log(
    `rsa-2048 profile / keygen  ${(r.rsaProfileMedianMs! / r.nativeRsaKeygenMedianMs!).toFixed(3)}x   (target ≤ 1.10x; medians of 100, noisy)`,
  );
  console.log(
    `rsa-2048 work beside keygen median ${f(r.rsaWorkBesideKeygenMedianMs)}   (certificate signing etc.: ` +
      `${((100 * r.rsaWorkBesideKeygenMedianMs!) / r.nativeRsaKeygenMedianMs!).toFixed(1)}% of keygen)`,
  );
  console.log(`revoked entries in the CRL  ${r.revokedInCrl}`);
  console.log(
    `revoke + CRL, 10k revoked  median ${f(r.revokeWith10kMedianMs)}   p95 ${f(r.revokeWith10kP95Ms)}   (target ≤ 50 ms)`,
  );
  console.log(
    `CRL build alone (cold)     1k ${f(r.crlBuild1000MedianMs)}   5k ${f(r.crlBuild5000MedianMs)}   10k ${f(r.crlBuild10000MedianMs)}` +
      `   (10k/1k = ${(r.crlBuild10000MedianMs! / r.crlBuild1000MedianMs!).toFixed(1)}x: linear is 10x)`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runServicesBench().then(print, (err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
export { print as printServicesBench };
