// `npm run bench`: every benchmark in one run, each printing its figures next to baselines measured in
// the same run. Benchmarks never fail on a time; they only print.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SUITES: { file: string; run: string; print?: string }[] = [
  { file: 'startup.js', run: 'runStartupBench' },
  { file: 'pki.js', run: 'runPkiBench' },
  { file: 'services.js', run: 'runServicesBench', print: 'printServicesBench' },
  { file: 'revocation.js', run: 'runRevocationBench', print: 'printRevocationBench' },
  { file: 'revoke-cluster.js', run: 'runClusterRevokeBench' },
  { file: 'web.js', run: 'runWebBench' },
  { file: 'issue-flood.js', run: 'runIssueFloodBench' },
  { file: 'ca-sync-pg.js', run: 'runCaSyncPgBench', print: 'printCaSyncPgBench' },
  { file: 'replicas.js', run: 'runReplicasBench', print: 'printReplicasBench' },
  { file: 'backup.js', run: 'runBackupBench', print: 'printBackupBench' },
  { file: 'crl-size.js', run: 'runCrlSizeBench', print: 'printCrlSizeBench' },
  { file: 'access-bundle.js', run: 'runAccessBench', print: 'printAccessBench' },
  { file: 'access.js', run: 'runAccessBench' },
  { file: 'access-dual-stack.js', run: 'runAccessDualStackBench' },
  { file: 'tunnel.js', run: 'runTunnelBench' },
  { file: 'server-processes.js', run: 'runProcessesBench' },
];

const only = process.argv.slice(2);
const results: Record<string, unknown> = {};
for (const suite of SUITES) {
  const name = suite.file.replace(/\.js$/, '');
  if (only.length > 0 && !only.includes(name)) continue;
  const path = fileURLToPath(new URL(`./${suite.file}`, import.meta.url));
  if (!existsSync(path)) continue;
  const mod = (await import(path)) as Record<string, (arg?: unknown) => Promise<unknown>>;
  const run = mod[suite.run];
  if (!run) continue;
  console.log(`\n##### ${name} #####`);
  try {
    const result = await run();
    results[name] = result;
    if (suite.print) await mod[suite.print]!(result);
  } catch (err) {
    // a suite that cannot run here (e.g. no root for network namespaces) leaves its rows empty
    console.log(`${name}: could not run: ${err instanceof Error ? err.message : String(err)}`);
  }
}
printIssueTable(results);

interface Load {
  p95: number;
}

/** The performance issue's table: each row with its baseline from this run and the goal. */
function printIssueTable(r: Record<string, unknown>): void {
  const startup = r.startup as import('./startup.js').StartupBenchResult | undefined;
  const pki = r.pki as { ecRsaCa: number; ecEcCa: number; easyRsaEc: number } | undefined;
  const rev = r.revocation as import('./revocation.js').RevocationBenchResult | undefined;
  const kube = r['revoke-cluster'] as import('./revoke-cluster.js').ClusterRevokeBenchResult | undefined;
  const tunnel = r.tunnel as import('./tunnel.js').TunnelBenchResult | undefined;
  const web = r.web as
    | {
        healthz: Load;
        certList: Load;
        certFilters: Load;
        certSearch: Load;
        rssStartMb: number;
        rssMb: number;
      }
    | undefined;
  const ms = (x: number) => `${x < 10 ? x.toFixed(2) : x.toFixed(0)} ms`;
  const none = 'not run';
  const rows: [string, string, string, string][] = [
    [
      '`podgate cert list` (whole process)',
      startup
        ? `${ms(startup.certListBundleMs)} = ${(startup.certListBundleMs / startup.nodeMs).toFixed(2)}x (tsc build: ${(startup.certListTscMs / startup.nodeMs).toFixed(2)}x${startup.certListBaselineMs === undefined ? '' : `; baseline build: ${(startup.certListBaselineMs / startup.nodeMs).toFixed(2)}x`})`
        : none,
      startup ? `node -e 0 ${ms(startup.nodeMs)}` : none,
      '<= 1.7x node -e 0',
    ],
    [
      'revoke -> client dropped, from the CLI call (local mode)',
      rev ? ms(rev.fromCallStart.median) : none,
      rev ? `CLI no-op ${ms(rev.cliBaselineMs.median)}` : none,
      '<= 120 ms',
    ],
    [
      'cluster-mode revoke, CLI call -> podgate-crl Secret written (real API server; every call a first revoke)',
      kube
        ? `median ${ms(kube.revokeMs.median)}, first ${ms(kube.revokeMs.first)}, worst ${ms(kube.revokeMs.worst)}${kube.baselineRevokeMs ? ` (baseline build: median ${ms(kube.baselineRevokeMs.median)}, worst ${ms(kube.baselineRevokeMs.worst)})` : ''}`
        : none,
      kube
        ? `node -e 0 ${ms(kube.nodeMs)}; local cert list ${ms(kube.certListMs)}; local cert revoke ${ms(kube.localRevokeMs)}`
        : none,
      '<= 300 ms every time',
    ],
    [
      'revoke -> cut on the real node, from the CLI call',
      'not in npm run bench (real node: npm run test:node)',
      '-',
      '<= 0.3 s every time',
    ],
    [
      'EC P-256 profile on the default CA (now ec-p384)',
      pki ? `${ms(pki.ecEcCa)} (rsa-3072 CA: ${ms(pki.ecRsaCa)})` : none,
      pki ? `easy-rsa ${ms(pki.easyRsaEc)}` : none,
      '<= 1 ms',
    ],
    [
      'admin certificate list, 10k certs, 50 connections, p95',
      web
        ? `page 1 ${ms(web.certList.p95)}; sorts/filters/search ${ms(web.certFilters.p95)}; deep ${ms(web.certSearch.p95)}`
        : none,
      web ? `/healthz p95 ${ms(web.healthz.p95)}` : none,
      '<= 2x /healthz p95',
    ],
    [
      '`serve` RSS, 10k certs, after the web bench',
      web ? `${web.rssStartMb.toFixed(0)} -> ${web.rssMb.toFixed(0)} MB` : none,
      '-',
      '<= 110 MB after load',
    ],
    [
      '`server run` start -> first packet to a pod',
      rev
        ? `${ms(rev.serverStartToReadyMs + rev.clientConnectOnReadyMs)} = ready ${ms(rev.serverStartToReadyMs)} + client on the ready server ${ms(rev.clientConnectOnReadyMs)} (client dialling before the start, 1 s retries: ${ms(rev.serverStartToFirstRoundTripMs)})`
        : none,
      rev && startup ? `node -e 0 ${ms(startup.nodeMs)}` : '-',
      '<= 1 s',
    ],
    [
      'tunnel, one TCP stream office -> pod (namespaces, not the real node)',
      tunnel
        ? tunnel.variants
            .slice(1)
            .map((v) => `${v.name}: ${v.mbps.toFixed(0)} Mbit/s (${v.ratio.toFixed(2)}x)`)
            .join('; ')
        : none,
      tunnel
        ? `${tunnel.variants[0]!.name} ${tunnel.variants[0]!.mbps.toFixed(0)} Mbit/s; veth without tunnel ${tunnel.wireMbps.toFixed(0)} Mbit/s`
        : none,
      '>= 1.3x the default config',
    ],
  ];
  console.log('\n##### issue 24 table (this run; the machine may be shared: compare ratios) #####');
  console.log('| work | now | baseline in the same run | goal |\n|---|---|---|---|');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}
