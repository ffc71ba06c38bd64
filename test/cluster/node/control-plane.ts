/**
 * A control plane for the real-node e2e: etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler from the cluster build cache, as processes on the machine's loopback. The API server
 * advertises the node's address (`advertiseAddress`), so that the `kubernetes` Service's endpoint is the
 * relay inside the node namespace and pods reach the API server through kube-proxy like on a real node.
 *
 * Kept small and separate from the control-plane harness (`npm run test-cluster`) so the node can be
 * exercised on its own; both use the same binaries. Credentials: the API server's self-signed serving
 * certificate (it names 127.0.0.1, the advertised address and the first service IP), a static admin
 * token, and a service-account signing key made with openssl.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { exec } from '../../../src/lib/exec.js';
import { cacheRoot } from './paths.js';
import { nodeBinaries } from './with-node.js';

export interface ControlPlane {
  kubeconfig: string;
  dir: string;
  stop(): Promise<void>;
}

function versions(repo: string): { kubernetes: string; etcd: string } {
  try {
    return JSON.parse(readFileSync(join(repo, 'test', 'cluster', 'versions.json'), 'utf8')) as {
      kubernetes: string;
      etcd: string;
    };
  } catch {
    return { kubernetes: 'v1.34.4', etcd: 'v3.6.4' };
  }
}

export function controlPlaneBinaries(repo: string): Record<string, string> {
  const v = versions(repo);
  const k8s = join(cacheRoot(), `k8s-${v.kubernetes}`, 'bin');
  return {
    etcd: join(cacheRoot(), `etcd-${v.etcd}`, 'bin', 'etcd'),
    apiserver: join(k8s, 'kube-apiserver'),
    controllerManager: join(k8s, 'kube-controller-manager'),
    scheduler: join(k8s, 'kube-scheduler'),
  };
}

/** What the real-node e2e lacks on this machine (empty when it can run). */
export async function nodeTestPrerequisites(repo: string): Promise<string[]> {
  const missing: string[] = [];
  for (const [name, p] of Object.entries(controlPlaneBinaries(repo)))
    if (!existsSync(p)) missing.push(`${name} (${p}; build: npm run test-cluster -- up)`);
  try {
    nodeBinaries(repo);
  } catch (err) {
    missing.push((err as Error).message);
  }
  for (const [pkg, bin] of [
    ['containerd', '/usr/bin/containerd'],
    ['runc', '/usr/sbin/runc'],
    ['containernetworking-plugins', '/usr/lib/cni/bridge'],
    ['buildah', '/usr/bin/buildah'],
    ['debootstrap', '/usr/sbin/debootstrap'],
    ['conntrack', '/usr/sbin/conntrack'],
    ['busybox-static', '/bin/busybox'],
    ['kubectl', '/usr/bin/kubectl'],
  ] as const) {
    if (!existsSync(bin)) missing.push(`${pkg} (${bin})`);
  }
  return missing;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startControlPlane(
  repo: string,
  o: { advertiseAddress: string },
): Promise<ControlPlane> {
  const bins = controlPlaneBinaries(repo);
  const dir = mkdtempSync(join(tmpdir(), 'pg-cp-'));
  const pids: number[] = [];
  const start = (name: string, argv: string[]): void => {
    const fd = openSync(join(dir, `${name}.log`), 'a');
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.unref();
    if (child.pid) pids.push(child.pid);
  };
  const stop = async (): Promise<void> => {
    for (const pid of [...pids].reverse()) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    await new Promise((r) => setTimeout(r, 1500));
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [etcdPort, etcdPeer, apiPort, cmPort, schedPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    start('etcd', [
      bins.etcd!,
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      '--log-level=warn',
    ]);
    const saKey = join(dir, 'sa.key');
    await exec([
      'openssl',
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-out',
      saKey,
    ]);
    const token = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin,system:masters\n`, { mode: 0o600 });
    const certDir = join(dir, 'pki');
    start('kube-apiserver', [
      bins.apiserver!,
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--advertise-address=${o.advertiseAddress}`,
      `--cert-dir=${certDir}`,
      '--service-cluster-ip-range=10.96.0.0/12',
      '--service-node-port-range=30000-32767',
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saKey}`,
      `--service-account-signing-key-file=${saKey}`,
      '--allow-privileged=true',
    ]);
    const ca = join(certDir, 'apiserver.crt');
    const kubeconfig = join(dir, 'admin.kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: test',
        '  cluster:',
        `    server: https://127.0.0.1:${apiPort}`,
        `    certificate-authority: ${ca}`,
        'users:',
        '- name: admin',
        '  user:',
        `    token: ${token}`,
        'contexts:',
        '- name: test',
        '  context: {cluster: test, user: admin}',
        'current-context: test',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const end = Date.now() + 90_000;
    for (;;) {
      const r = existsSync(ca)
        ? await exec(['kubectl', '--kubeconfig', kubeconfig, 'get', '--raw', '/readyz'], { check: false })
        : undefined;
      if (r?.code === 0) break;
      if (Date.now() > end)
        throw new Error(
          `control plane: API server not ready\n${readFileSync(join(dir, 'kube-apiserver.log'), 'utf8').slice(-3000)}`,
        );
      await new Promise((res) => setTimeout(res, 500));
    }
    start('kube-controller-manager', [
      bins.controllerManager!,
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${cmPort}`,
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${ca}`,
      '--use-service-account-credentials=true',
      '--allocate-node-cidrs=true',
      '--cluster-cidr=10.244.0.0/16',
      '--node-cidr-mask-size=24',
      '--service-cluster-ip-range=10.96.0.0/12',
      '--leader-elect=false',
      '--controllers=*',
    ]);
    start('kube-scheduler', [
      bins.scheduler!,
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      '--leader-elect=false',
    ]);
    // the default ServiceAccount appears once the controller-manager runs: pods need it
    const saEnd = Date.now() + 60_000;
    while (
      (
        await exec(['kubectl', '--kubeconfig', kubeconfig, 'get', 'serviceaccount', 'default'], {
          check: false,
        })
      ).code !== 0
    ) {
      if (Date.now() > saEnd)
        throw new Error(
          `control plane: no default ServiceAccount\n${readFileSync(join(dir, 'kube-controller-manager.log'), 'utf8').slice(-3000)}`,
        );
      await new Promise((res) => setTimeout(res, 500));
    }
    return { kubeconfig, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
