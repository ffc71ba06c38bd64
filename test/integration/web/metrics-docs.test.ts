/**
 * docs/grafana/podgate.json and docs/prometheus/podgate-rules.yaml against what podgate serves: every
 * metric either names is in the /metrics of a running `podgate serve` (scraped here); the rules pass
 * Debian's `promtool check rules` and `promtool test rules` (test/fixtures/prometheus: each alert fires on
 * the series that should trigger it); and the metrics added for the alerts report the cluster's state
 * (a ClusterPort stub stands in for the API server: the gauges' arithmetic is under test, the status
 * read itself is covered by the cluster suites).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../../src/web/metrics.js';
import { StoreAgentReporter } from '../../../src/openvpn/store-reporter.js';
import type { ClusterPort } from '../../../src/web/cluster-port.js';
import { startServe, type Serving } from '../../helpers/serve.js';
import { testContext } from '../../helpers/context.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const DASHBOARD = join(ROOT, 'docs', 'grafana', 'podgate.json');
const RULES = join(ROOT, 'docs', 'prometheus', 'podgate-rules.yaml');
const RULE_TESTS = join(ROOT, 'test', 'fixtures', 'prometheus', 'podgate-rules.test.yaml');
// Debian's prometheus package (scripts/prerequisites.mjs installs it); missing = failure
const PROMTOOL = '/usr/bin/promtool';

const TOKEN = 'metrics-token-for-the-docs-test';

/** Metric names in PromQL text (a histogram's series suffixes dropped). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bpodgate_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string }[];
}

function dashboardExprs(): { title: string; expr: string }[] {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; panels: Panel[] };
  assert.equal(d.uid, 'podgate');
  const out: { title: string; expr: string }[] = [];
  for (const p of d.panels) {
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${datasource}', `${p.title}: the datasource variable`);
    assert.ok(p.targets && p.targets.length > 0, `${p.title}: has queries`);
    for (const t of p.targets) out.push({ title: p.title, expr: t.expr });
  }
  return out;
}

function ruleExprs(): { alert: string; expr: string }[] {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ alert: r.alert, expr: String(r.expr) })));
}

describe('Grafana dashboard and Prometheus rules against the metrics podgate serves', function () {
  this.timeout(60_000);
  let dir: string;
  let serving: Serving | undefined;
  let exposition: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-metrics-docs-'));
    const tokenFile = join(dir, 'metrics-token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    serving = await startServe({
      dataDir: join(dir, 'data'),
      env: { PODGATE_WEB_METRICS_TOKEN_FILE: tokenFile },
    });
    // one failed sign-in, so the counter has counted something real
    const failed = await fetch(`${serving.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'nobody', password: 'wrong-password-here' }),
    });
    assert.equal(failed.status, 401);
    const res = await fetch(`${serving.url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    exposition = await res.text();
  });
  after(async () => {
    await serving?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const served = () => new Set([...exposition.matchAll(/^# TYPE (podgate_[a-z0-9_]+) /gm)].map((m) => m[1]!));

  it('every metric the dashboard queries is served by `podgate serve`', () => {
    const names = served();
    const exprs = dashboardExprs();
    assert.ok(exprs.length >= 15, `${exprs.length} queries`);
    const missing = exprs.flatMap((e) =>
      metricNames(e.expr)
        .filter((n) => !names.has(n))
        .map((n) => `${e.title}: ${n}`),
    );
    assert.deepEqual(missing, []);
    // what the dashboard is for
    const all = new Set(exprs.flatMap((e) => metricNames(e.expr)));
    for (const want of [
      'podgate_vpn_sessions',
      'podgate_server_replicas',
      'podgate_revocations_pending',
      'podgate_revocation_pending_seconds',
      'podgate_revocation_last_effect_seconds',
      'podgate_revocations_effective_total',
      'podgate_crl_age_seconds',
      'podgate_crl_next_update_seconds',
      'podgate_certificates_expiring',
      'podgate_ca_expiry_seconds',
      'podgate_signin_failures_total',
      'podgate_access_dropped_packets',
      'podgate_access_replica_dropped_packets_total',
    ]) {
      assert.ok(all.has(want), want);
    }
  });

  it('every metric the alert rules use is served, and the rules cover what they must', () => {
    const names = served();
    const rules = ruleExprs();
    const missing = rules.flatMap((r) =>
      metricNames(r.expr)
        .filter((n) => !names.has(n))
        .map((n) => `${r.alert}: ${n}`),
    );
    assert.deepEqual(missing, []);
    const byAlert = new Map(rules.map((r) => [r.alert, r.expr]));
    assert.match(byAlert.get('PodgateCrlExpiresSoon') ?? '', /podgate_crl_next_update_seconds/);
    assert.match(
      byAlert.get('PodgateCaExpiresWithin90Days') ?? '',
      /podgate_ca_expiry_seconds < 90 \* 86400/,
    );
    assert.match(byAlert.get('PodgateRevocationPending') ?? '', /podgate_revocation_pending_seconds > 60/);
    assert.match(
      byAlert.get('PodgateNoServerReplicaReady') ?? '',
      /podgate_server_replicas\{state="ready"\} == 0/,
    );
  });

  it('a failed sign-in is counted; the CRL gauges have values', () => {
    assert.match(exposition, /^podgate_signin_failures_total 1$/m);
    assert.match(exposition, /^podgate_crl_number \d+$/m);
    assert.match(exposition, /^podgate_crl_age_seconds \d/m);
    assert.match(exposition, /^podgate_revocation_pending_seconds 0$/m);
  });

  it('promtool check rules and promtool test rules pass', async () => {
    assert.ok(existsSync(PROMTOOL), `${PROMTOOL} (Debian package prometheus) is missing`);
    const run = promisify(execFile);
    const check = await run(PROMTOOL, ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.match(check.stdout, /SUCCESS: 7 rules found/);
    const tested = await run(PROMTOOL, ['test', 'rules', RULE_TESTS], { encoding: 'utf8' });
    assert.match(tested.stdout, /SUCCESS/);
  });
});

describe('metrics for the alerts: cluster state and pending revocations', function () {
  this.timeout(30_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-metrics-cluster-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('server replicas, the CRL the pod applied, and how long a revocation has been pending', async () => {
    const ctx = await testContext(dir);
    try {
      const crl = (await ctx.store.getCrl())!;
      assert.ok(crl, 'a CRL exists after init');
      let at = new Date(crl.thisUpdate.getTime() + 90_000);
      let applied = crl.number - 1;
      let ready = 0;
      let reads = 0;
      // Stub of the cluster: what ClusterService.status() reports (a real API server is not needed for this arithmetic)
      const cluster = {
        status: async () => {
          reads += 1;
          return {
            namespace: 'middleware',
            deployment: {
              replicas: 1,
              readyReplicas: ready,
              updatedReplicas: 1,
              generation: 1,
              observedGeneration: 1,
            },
            pods: [],
            endpoints: [],
            agent: { lastAppliedCrlNumber: applied, effective: [], pending: [] },
            // the replicas' Leases: a enforces and counted drops, b enforces nothing, c's report is stale
            replicas: [
              { pod: 'podgate-openvpn-a', droppedPackets: 12, stale: false },
              { pod: 'podgate-openvpn-b', stale: false },
              { pod: 'podgate-openvpn-c', droppedPackets: 99, stale: true },
            ],
            newlyEffective: [],
          };
        },
      } as unknown as Pick<ClusterPort, 'status'>;
      const m = createMetrics(ctx.store, undefined, () => at, ctx, { cluster });
      let text = await m.registry.metrics();
      assert.match(text, /^podgate_server_replicas\{namespace="middleware",state="ready"\} 0$/m);
      assert.match(text, /^podgate_server_replicas\{namespace="middleware",state="desired"\} 1$/m);
      assert.match(
        text,
        new RegExp(`^podgate_crl_applied_number\\{namespace="middleware"\\} ${applied}$`, 'm'),
      );
      assert.match(text, /^podgate_revocations_pending 1$/m);
      assert.match(text, /^podgate_revocation_pending_seconds 90$/m);
      assert.equal(reads, 1, 'one status read per scrape');
      // policy drops per replica (pod), never per user: fresh reports only
      assert.match(text, /^podgate_access_replica_dropped_packets_total\{replica="podgate-openvpn-a"\} 12$/m);
      assert.doesNotMatch(
        text,
        /^podgate_access_replica_dropped_packets_total\{replica="podgate-openvpn-[bc]"\}/m,
      );

      // the pod catches up and becomes Ready (after the cache's 10 s)
      applied = crl.number;
      ready = 1;
      at = new Date(at.getTime() + 11_000);
      text = await m.registry.metrics();
      assert.match(text, /^podgate_server_replicas\{namespace="middleware",state="ready"\} 1$/m);
      assert.match(text, /^podgate_revocations_pending 0$/m);
      assert.match(text, /^podgate_revocation_pending_seconds 0$/m);

      // local mode: a session the agent could not end yet
      await ctx.store.addPending({
        serial: 'AB01',
        commonName: 'alice-laptop',
        crlNumber: crl.number,
        queuedAt: new Date(at.getTime() - 75_000),
      });
      text = await m.registry.metrics();
      assert.match(text, /^podgate_revocations_pending 1$/m);
      assert.match(text, /^podgate_revocation_pending_seconds 75$/m);

      // the agent reports it effective (local mode's reporter): pending cleared, time to effect recorded
      assert.match(text, /^podgate_revocation_last_effect_seconds 0$/m, '0 until one took effect');
      assert.match(text, /^podgate_revocations_effective_total 0$/m);
      await new StoreAgentReporter(ctx.store).applied({
        crlNumber: crl.number,
        appliedAt: at,
        revoked: [
          {
            serial: 'AB01',
            commonName: 'alice-laptop',
            revokedAt: new Date(at.getTime() - 1_250).toISOString(),
          },
        ],
        killed: [],
      });
      text = await m.registry.metrics();
      assert.match(text, /^podgate_revocations_pending 0$/m);
      assert.match(text, /^podgate_revocations_effective_total 1$/m);
      assert.match(text, /^podgate_revocation_last_effect_seconds 1\.25$/m);

      // an unreachable cluster: the cluster gauges go absent instead of repeating old values
      const down = createMetrics(ctx.store, undefined, () => at, ctx, {
        cluster: { status: () => Promise.reject(new Error('connection refused')) } as unknown as Pick<
          ClusterPort,
          'status'
        >,
      });
      text = await down.registry.metrics();
      assert.doesNotMatch(text, /^podgate_server_replicas\{/m);
      assert.match(text, /^# TYPE podgate_server_replicas gauge$/m);
      // an API server that never answers: the scrape still completes (after a short wait), gauges absent
      const hung = createMetrics(ctx.store, undefined, () => at, ctx, {
        cluster: { status: () => new Promise(() => undefined) } as unknown as Pick<ClusterPort, 'status'>,
      });
      text = await hung.registry.metrics();
      assert.doesNotMatch(text, /^podgate_crl_applied_number\{/m);
      assert.match(text, /^podgate_crl_number \d+$/m);
    } finally {
      await ctx.close();
    }
  });
});
