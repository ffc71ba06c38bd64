/**
 * PKI benchmark: podgate's CA against the tools people use today, measured in the same run on the same
 * machine (openssl CLI, Debian's easy-rsa, Node's bare keygen). Prints medians and ratios; never fails.
 * Run: `npm run build && node dist/bench/pki.js` (or through bench/run.ts via `runPkiBench`).
 */
import { generateKeyPair } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { exec } from '../src/lib/exec.js';
import {
  CertificateAuthority,
  createCa,
  type CaKeyType,
  type ClientKeyType,
  type RevokedEntry,
} from '../src/pki/index.js';
import { median } from './stats.js';

const EASYRSA = '/usr/share/easy-rsa/easyrsa';
const generateKeyPairAsync = promisify(generateKeyPair);

export interface Measurement {
  name: string;
  iterations: number;
  medianMs: number;
  note?: string;
}

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Median of `iterations` runs after `warmup` unmeasured ones. */
export async function measure(
  name: string,
  iterations: number,
  fn: () => Promise<unknown> | unknown,
  warmup = 2,
): Promise<Measurement> {
  for (let i = 0; i < warmup; i++) await fn();
  const xs: number[] = [];
  for (let i = 0; i < iterations; i++) xs.push(await time(fn));
  return { name, iterations, medianMs: median(xs) };
}

function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-bench-pki-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** (a) podgate: key + certificate for one client, end to end. */
export async function benchPodgateIssue(
  caKeyType: CaKeyType,
  keyType: ClientKeyType,
  iterations: number,
): Promise<Measurement> {
  const ca = CertificateAuthority.load(
    await createCa({ commonName: 'bench CA', keyType: caKeyType, days: 3650 }),
  );
  let i = 0;
  return measure(`podgate ${keyType} client (${caKeyType} CA)`, iterations, () =>
    ca.issue({ kind: 'client', commonName: `bench-${i++}`, days: 365, keyType }),
  );
}

/**
 * (b) podgate rsa-2048 client against Node's bare `generateKeyPair('rsa', 2048)`, interleaved so that load
 * from elsewhere on the machine hits both alike. RSA keygen time varies a lot per key (prime search).
 */
export async function benchRsaVsNative(
  iterations: number,
): Promise<{ podgate: Measurement; native: Measurement }> {
  const ca = CertificateAuthority.load(
    await createCa({ commonName: 'bench CA', keyType: 'rsa-3072', days: 3650 }),
  );
  const native = () => generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const podgate = (i: number) =>
    ca.issue({ kind: 'client', commonName: `rsa-${i}`, days: 365, keyType: 'rsa-2048' });
  await native();
  await podgate(-1);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < iterations; i++) {
    if (i % 2) {
      a.push(await time(() => podgate(i)));
      b.push(await time(native));
    } else {
      b.push(await time(native));
      a.push(await time(() => podgate(i)));
    }
  }
  return {
    podgate: { name: 'podgate rsa-2048 client (rsa-3072 CA)', iterations, medianMs: median(a) },
    native: { name: "node generateKeyPair('rsa', 2048) alone", iterations, medianMs: median(b) },
  };
}

/** (c) openssl CLI per client: genpkey + req + x509 -req (three processes, as a script would do it). */
export async function benchOpensslCli(algo: 'ec' | 'rsa', iterations: number): Promise<Measurement> {
  return withTempDir(async (dir) => {
    const f = (n: string) => join(dir, n);
    await exec([
      'openssl',
      'req',
      '-x509',
      '-newkey',
      'rsa:3072',
      '-nodes',
      '-keyout',
      f('ca.key'),
      '-subj',
      '/CN=bench CA',
      '-days',
      '3650',
      '-out',
      f('ca.pem'),
    ]);
    writeFileSync(
      f('ext.cnf'),
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
    );
    const keyArgs =
      algo === 'ec'
        ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
        : ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
    let i = 0;
    return measure(
      `openssl genpkey+req+x509 -req ${algo === 'ec' ? 'ec-p256' : 'rsa-2048'}`,
      iterations,
      async () => {
        const n = i++;
        await exec(['openssl', 'genpkey', ...keyArgs, '-out', f(`${n}.key`)]);
        await exec([
          'openssl',
          'req',
          '-new',
          '-key',
          f(`${n}.key`),
          '-subj',
          `/CN=c${n}`,
          '-out',
          f(`${n}.csr`),
        ]);
        await exec([
          'openssl',
          'x509',
          '-req',
          '-in',
          f(`${n}.csr`),
          '-CA',
          f('ca.pem'),
          '-CAkey',
          f('ca.key'),
          '-set_serial',
          `0x${(0x1000 + n).toString(16)}`,
          '-days',
          '365',
          '-extfile',
          f('ext.cnf'),
          '-out',
          f(`${n}.pem`),
        ]);
      },
      1,
    );
  });
}

function easyRsaEnv(pki: string, algo: 'ec' | 'rsa'): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, EASYRSA_BATCH: '1', EASYRSA_PKI: pki, EASYRSA_ALGO: algo };
  if (algo === 'ec') env.EASYRSA_CURVE = 'prime256v1';
  else env.EASYRSA_KEY_SIZE = '2048';
  delete env.EASYRSA_REQ_CN; // build-client-full refuses an external common name
  return env;
}

async function easyRsaPki(dir: string, algo: 'ec' | 'rsa'): Promise<NodeJS.ProcessEnv> {
  const env = easyRsaEnv(join(dir, `pki-${algo}`), algo);
  await exec([EASYRSA, 'init-pki'], { env, cwd: dir });
  await exec([EASYRSA, 'build-ca', 'nopass'], { env: { ...env, EASYRSA_REQ_CN: 'bench CA' }, cwd: dir });
  return env;
}

/** (d) easy-rsa `build-client-full NAME nopass`, and `revoke` + `gen-crl` on the same PKI. */
export async function benchEasyRsa(algo: 'ec' | 'rsa', iterations: number): Promise<Measurement[]> {
  if (!existsSync(EASYRSA)) return [];
  return withTempDir(async (dir) => {
    const env = await easyRsaPki(dir, algo);
    let i = 0;
    const build = await measure(
      `easy-rsa build-client-full ${algo === 'ec' ? 'ec-p256' : 'rsa-2048'}`,
      iterations,
      () => exec([EASYRSA, 'build-client-full', `c${i++}`, 'nopass'], { env, cwd: dir }),
      0,
    );
    let r = 0;
    const revoke = await measure(
      `easy-rsa revoke (${algo} PKI)`,
      Math.min(3, i),
      () => exec([EASYRSA, 'revoke', `c${r++}`], { env, cwd: dir }),
      0,
    );
    const genCrl = await measure(
      `easy-rsa gen-crl, ${r} revoked (${algo} PKI)`,
      3,
      () => exec([EASYRSA, 'gen-crl'], { env, cwd: dir }),
      0,
    );
    return [build, revoke, genCrl];
  });
}

function revokedEntries(n: number): RevokedEntry[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => ({
    serial: (0x10000000 + i).toString(16).toUpperCase(),
    revokedAt: new Date(now - i * 60_000),
    reason: i % 3 ? 'keyCompromise' : 'unspecified',
  }));
}

/** (e) podgate CRL build (sign + verify) with `sizes` entries. */
export async function benchCrl(sizes: readonly number[], iterations: number): Promise<Measurement[]> {
  const ca = CertificateAuthority.load(
    await createCa({ commonName: 'bench CA', keyType: 'rsa-3072', days: 3650 }),
  );
  const out: Measurement[] = [];
  for (const n of sizes) {
    const entries = revokedEntries(n);
    out.push(
      await measure(`podgate buildCrl ${n.toLocaleString('en')} entries (sign+verify)`, iterations, () =>
        ca.buildCrl({ number: 1, entries, nextUpdateDays: 30 }),
      ),
    );
  }
  return out;
}

/** (e) easy-rsa gen-crl (openssl ca -gencrl) over an index.txt holding `n` revoked certificates. */
export async function benchEasyRsaCrl(sizes: readonly number[], iterations: number): Promise<Measurement[]> {
  if (!existsSync(EASYRSA)) return [];
  return withTempDir(async (dir) => {
    const env = await easyRsaPki(dir, 'rsa');
    const out: Measurement[] = [];
    for (const n of sizes) {
      const lines = revokedEntries(n).map(
        (e, i) => `R\t351231000000Z\t${utc(e.revokedAt)},keyCompromise\t${e.serial}\tunknown\t/CN=c${i}\n`,
      );
      writeFileSync(join(env.EASYRSA_PKI!, 'index.txt'), lines.join(''));
      out.push(
        await measure(
          `easy-rsa gen-crl ${n.toLocaleString('en')} entries`,
          iterations,
          () => exec([EASYRSA, 'gen-crl'], { env, cwd: dir }),
          1,
        ),
      );
    }
    return out;
  });
}

function utc(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

function printTable(rows: Measurement[]): void {
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'measurement'.padEnd(w)}  ${'n'.padStart(4)}  ${'median ms'.padStart(10)}`);
  console.log(`${'-'.repeat(w)}  ----  ----------`);
  for (const r of rows)
    console.log(
      `${r.name.padEnd(w)}  ${String(r.iterations).padStart(4)}  ${fmt(r.medianMs).padStart(10)}${r.note ? `  ${r.note}` : ''}`,
    );
}

function ratio(fast: Measurement | undefined, slow: Measurement | undefined, what: string): string {
  if (!fast || !slow) return `${what}: not measured`;
  const x = slow.medianMs / fast.medianMs;
  return x >= 1 ? `${what}: ${x.toFixed(1)}x faster` : `${what}: ${(1 / x).toFixed(2)}x slower`;
}

/** Runs every PKI measurement and prints a table and the ratios. Never throws for a slow result. */
export async function runPkiBench(): Promise<{ ecRsaCa: number; ecEcCa: number; easyRsaEc: number }> {
  console.log('# podgate PKI benchmark (medians; baselines measured in this run)\n');
  const ecRsaCa = await benchPodgateIssue('rsa-3072', 'ec-p256', 200);
  const ecEcCa = await benchPodgateIssue('ec-p384', 'ec-p256', 200);
  const { podgate: rsa, native } = await benchRsaVsNative(30);
  const cliEc = await benchOpensslCli('ec', 10);
  const cliRsa = await benchOpensslCli('rsa', 10);
  const [erEc, erRevokeEc, erCrlEc] = await benchEasyRsa('ec', 5);
  const [erRsa] = await benchEasyRsa('rsa', 5);
  const crl = await benchCrl([1_000, 10_000], 15);
  const erCrl = await benchEasyRsaCrl([1_000, 10_000], 3);
  const rows = [
    ecRsaCa,
    ecEcCa,
    rsa,
    native,
    cliEc,
    cliRsa,
    erEc,
    erRsa,
    erRevokeEc,
    erCrlEc,
    ...crl,
    ...erCrl,
  ].filter((r): r is Measurement => r !== undefined);
  printTable(rows);

  console.log('\n# ratios');
  console.log(ratio(ecRsaCa, erEc, 'ec-p256 client (rsa-3072 CA) vs easy-rsa EC build-client-full'));
  console.log(ratio(ecEcCa, erEc, 'ec-p256 client (ec-p384 CA) vs easy-rsa EC build-client-full'));
  console.log(ratio(ecRsaCa, cliEc, 'ec-p256 client (rsa-3072 CA) vs openssl CLI EC'));
  console.log(ratio(rsa, erRsa, 'rsa-2048 client vs easy-rsa RSA build-client-full'));
  console.log(ratio(rsa, cliRsa, 'rsa-2048 client vs openssl CLI RSA'));
  const overhead = ((rsa.medianMs / native.medianMs - 1) * 100).toFixed(1);
  console.log(`rsa-2048 client vs bare native keygen: ${overhead}% overhead (target within 10%)`);
  if (crl.length === 2) {
    const perEntry = crl.map((m, i) => (m.medianMs / [1_000, 10_000][i]!) * 1000);
    console.log(
      `CRL scaling: ${perEntry.map((u) => u.toFixed(2)).join(' -> ')} µs per entry at 1,000 -> 10,000 (x${(crl[1]!.medianMs / crl[0]!.medianMs).toFixed(1)} time for x10 entries)`,
    );
  }
  erCrl.forEach((m, i) =>
    console.log(ratio(crl[i], m, `CRL ${['1,000', '10,000'][i]} entries vs easy-rsa gen-crl`)),
  );
  console.log(
    `\ntargets: ec-p256 median <= 3 ms (${fmt(ecRsaCa.medianMs)} / ${fmt(ecEcCa.medianMs)} ms), >= 40x easy-rsa EC; rsa-2048 within 10% of native keygen, >= 2x easy-rsa`,
  );
  return { ecRsaCa: ecRsaCa.medianMs, ecEcCa: ecEcCa.medianMs, easyRsaEc: erEc?.medianMs ?? NaN };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runPkiBench().catch((e: unknown) => {
    // A benchmark reports; it never fails the build.
    console.error('pki benchmark could not finish:', e instanceof Error ? e.message : e);
  });
}
