/**
 * Revocation latency with the real data plane (root; network namespaces like test/e2e/dataplane):
 * for each of N revocations, a client connected from `office` is revoked with `podgate cert revoke`,
 * and the time until its openvpn process exits (server-pushed-halt) is measured from the CLI call's
 * start and from its return. Also `server run` start to the first TCP round trip through the tunnel,
 * in parts: start to the server's readiness (openvpn's "Initialization Sequence Completed", i.e. UDP
 * bound and the tun device up), and a fresh client's connect + first round trip on the ready server;
 * their sum is what a client dialling at the moment the server is ready sees. The figure with a client
 * that was already dialling before the server started is printed too: it includes the client's retry
 * wait (openvpn `--connect-retry 1`: up to 1 s after a refused first try), which is client timing.
 * Baseline in the same run: a no-op CLI call (`podgate cert list`), i.e. the CLI's own start-up cost.
 * Prints figures; never fails on a time.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { exec } from '../src/lib/exec.js';
import { serverPaths } from '../src/openvpn/server-files.js';
import {
  canUseNetns,
  cleanupAll,
  officeNodePod,
  startEchoServer,
  tcpProbe,
  OFFICE_NODE_POD as A,
} from '../test/helpers/netns.js';
import { startClient, waitClientConnected } from '../test/helpers/openvpn.js';
import { median } from './stats.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../bundle/podgate.js');

export interface RevocationBenchResult {
  revocations: number;
  /** ms from the start of `cert revoke` to the client's exit. */
  fromCallStart: { median: number; worst: number };
  /** ms from `cert revoke` returning to the client's exit (negative: the tunnel was down before the CLI returned). */
  fromCallReturn: { median: number; worst: number };
  /** ms from the bundle file's write (mtime of revocations.json, i.e. the revocation published) to the client's exit. */
  fromPublish: { median: number; worst: number };
  cliRevokeMs: { median: number };
  cliBaselineMs: { median: number };
  /** Client dialling since before the start (includes its retry wait). */
  serverStartToFirstRoundTripMs: number;
  /** `server run` start to openvpn's "Initialization Sequence Completed". */
  serverStartToReadyMs: number;
  /** A client started on the ready server: start to its first TCP round trip to the pod. */
  clientConnectOnReadyMs: number;
}

const round = (x: number): number => Math.round(x * 10) / 10;

export async function runRevocationBench(o: { revocations?: number } = {}): Promise<RevocationBenchResult> {
  const n = Math.max(10, o.revocations ?? 10);
  if (!(await canUseNetns()))
    throw new Error('the revocation bench needs root and iproute2 (network namespaces)');
  const work = mkdtempSync(join(tmpdir(), 'pg-bench-rev-'));
  const cfgFile = join(work, 'podgate.yaml');
  const topo = await officeNodePod({ prefix: 'pgb' });
  try {
    writeFileSync(join(work, 'admin.pw'), 'bench-admin-password\n', { mode: 0o600 });
    writeFileSync(
      cfgFile,
      [
        `dataDir: ${join(work, 'data')}`,
        'logLevel: warn',
        'vpn:',
        `  endpoints: ["${A.node}"]`,
        `  routes: { pods: ["${A.podCidr}"], services: ["${A.serviceCidr}"] }`,
        '  nat: true',
        '',
      ].join('\n'),
    );
    const cli = (...args: string[]) =>
      exec([process.execPath, CLI, '--config', cfgFile, ...args], { timeoutMs: 60_000 });
    await exec([process.execPath, CLI, '--config', cfgFile, 'init'], {
      env: { ...process.env, PODGATE_ADMIN_PASSWORD_FILE: join(work, 'admin.pw') },
    });
    const names = Array.from({ length: n + 1 }, (_, i) => `bench${i}.laptop`);
    const profiles: string[] = [];
    for (const name of names) {
      const out = join(work, `${name}.ovpn`);
      await cli('cert', 'issue', name, '--owner', 'admin', '--out', out);
      profiles.push(out);
    }
    await startEchoServer(topo.name('pod'), '0.0.0.0', 7007);

    // Server start to first round trip: the first client is already dialling when the server starts.
    const readProfile = (i: number) => readFileSync(profiles[i]!, 'utf8');
    const first = startClient(topo.name('office'), work, 'first', readProfile(0), [
      '--connect-retry',
      '1',
      '1',
    ]);
    const t0 = performance.now();
    const server = topo.spawn('node', [process.execPath, CLI, '--config', cfgFile, 'server', 'run'], {
      logFile: join(work, 'server.log'),
    });
    let readyAt = 0;
    void server.waitFor(/Initialization Sequence Completed/, 60_000).then(
      () => (readyAt = performance.now()),
      () => undefined,
    );
    await waitClientConnected(first, 60_000);
    // Short probes: a probe sent while the client was still installing its routes waited out its whole
    // timeout (500 ms before), which the figure then counted as start-up.
    while (!(await tcpProbe(topo.name('office'), A.pod, 7007, 100)))
      await new Promise((r) => setTimeout(r, 20));
    const startToRoundTrip = performance.now() - t0;
    await first.stop();
    if (!readyAt) throw new Error('server run never printed "Initialization Sequence Completed"');
    // A client that starts dialling on the ready server: handshake, routes, first round trip.
    const t1 = performance.now();
    const fresh = startClient(topo.name('office'), work, 'fresh', readProfile(0), [
      '--connect-retry',
      '1',
      '1',
    ]);
    await waitClientConnected(fresh, 60_000);
    while (!(await tcpProbe(topo.name('office'), A.pod, 7007, 100)))
      await new Promise((r) => setTimeout(r, 20));
    const connectOnReady = performance.now() - t1;
    await fresh.stop();

    const fromStart: number[] = [];
    const fromReturn: number[] = [];
    const revokeCall: number[] = [];
    const fromPublish: number[] = [];
    const bundleFile = join(serverPaths(loadConfig({ file: cfgFile })).dir, 'revocations.json');
    for (let i = 1; i <= n; i++) {
      const c = startClient(topo.name('office'), work, `c${i}`, readProfile(i), [
        '--connect-retry',
        '1',
        '1',
      ]);
      await waitClientConnected(c);
      let exitedAt = 0;
      let exitedWall = 0;
      void c.exited.then(() => {
        exitedAt = performance.now();
        exitedWall = Date.now();
      });
      const a = performance.now();
      await cli('cert', 'revoke', names[i]!, '--reason', 'keyCompromise');
      const b = performance.now();
      await Promise.race([c.exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (!exitedAt) throw new Error(`client ${names[i]} did not exit within 20 s of its revocation`);
      fromStart.push(exitedAt - a);
      fromReturn.push(exitedAt - b);
      revokeCall.push(b - a);
      fromPublish.push(exitedWall - statSync(bundleFile).mtimeMs);
    }
    const baseline: number[] = [];
    for (let i = 0; i < 5; i++) {
      const a = performance.now();
      await cli('cert', 'list');
      baseline.push(performance.now() - a);
    }
    await server.stop(8000);
    const result: RevocationBenchResult = {
      revocations: n,
      fromCallStart: { median: round(median(fromStart)), worst: round(Math.max(...fromStart)) },
      fromCallReturn: { median: round(median(fromReturn)), worst: round(Math.max(...fromReturn)) },
      fromPublish: { median: round(median(fromPublish)), worst: round(Math.max(...fromPublish)) },
      cliRevokeMs: { median: round(median(revokeCall)) },
      cliBaselineMs: { median: round(median(baseline)) },
      serverStartToFirstRoundTripMs: round(startToRoundTrip),
      serverStartToReadyMs: round(readyAt - t0),
      clientConnectOnReadyMs: round(connectOnReady),
    };
    return result;
  } finally {
    await cleanupAll();
    try {
      rmSync(dirname(serverPaths(loadConfig({ file: cfgFile })).activeCrl), { recursive: true, force: true });
    } catch {
      /* nothing written */
    }
    rmSync(work, { recursive: true, force: true });
  }
}

function print(r: RevocationBenchResult): void {
  const lines = [
    `revocation -> session drop, ${r.revocations} revocations (openvpn 2.6 client exit with server-pushed-halt)`,
    `  from \`cert revoke\` start:   median ${r.fromCallStart.median} ms, worst ${r.fromCallStart.worst} ms`,
    `  from \`cert revoke\` return:  median ${r.fromCallReturn.median} ms, worst ${r.fromCallReturn.worst} ms (negative = down before the CLI returned)`,
    `  from publication (bundle written) to the client's exit: median ${r.fromPublish.median} ms, worst ${r.fromPublish.worst} ms`,
    `  \`cert revoke\` call:          median ${r.cliRevokeMs.median} ms; baseline \`cert list\` ${r.cliBaselineMs.median} ms (ratio ${round(r.cliRevokeMs.median / r.cliBaselineMs.median)}x)`,
    `  drop median (from publication) vs the 1 s target: ${round(r.fromPublish.median / 1000)}x; from the CLI call start: ${round(r.fromCallStart.median / 1000)}x (mostly CLI start-up)`,
    `server run start -> ready (Initialization Sequence Completed): ${r.serverStartToReadyMs} ms`,
    `  + a client started on the ready server -> first TCP round trip to a pod: ${r.clientConnectOnReadyMs} ms`,
    `  = start -> first packet for a client dialling at readiness: ${round(r.serverStartToReadyMs + r.clientConnectOnReadyMs)} ms (goal <= 1000 ms)`,
    `  (a client already dialling before the start, retrying every 1 s: ${r.serverStartToFirstRoundTripMs} ms)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runRevocationBench({ revocations: Number(process.env.BENCH_REVOCATIONS ?? 10) }).then(
    print,
    (err: unknown) => {
      process.stderr.write(`revocation bench failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
export { print as printRevocationBench };
