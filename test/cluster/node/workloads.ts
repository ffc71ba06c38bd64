/**
 * What the real-node e2e runs besides podgate: a workload (busybox httpd and an iperf3 server, Deployment +
 * Service `web` in `default`) and the manager's own identity from k8s/ (ServiceAccount `podgate-manager` and its RBAC),
 * with a kubeconfig that carries that ServiceAccount's token, so podgate acts with exactly those rights.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../../src/lib/exec.js';
import { kubectlBin } from './paths.js';

export function webWorkload(image: string): Record<string, unknown> {
  const labels = { app: 'web' };
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: 'default', labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: [
                {
                  name: 'httpd',
                  image,
                  imagePullPolicy: 'Never',
                  command: [
                    '/bin/sh',
                    '-c',
                    'mkdir -p /www && echo "hello from web $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www',
                  ],
                  ports: [{ containerPort: 80 }],
                  readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 1 },
                },
                // the far end of the throughput figure (office → tunnel → pod)
                {
                  name: 'iperf3',
                  image,
                  imagePullPolicy: 'Never',
                  // iperf3 keeps its test buffer in a file under /tmp, which the scratch image lacks
                  command: ['/bin/sh', '-c', 'mkdir -p /tmp && exec /usr/bin/iperf3 -s -p 5201'],
                },
              ],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: 'default', labels },
        spec: { selector: labels, ports: [{ port: 80, targetPort: 80 }] },
      },
    ],
  };
}

/** Applies k8s/'s namespace, ServiceAccount and RBAC and returns a kubeconfig using that account's token. */
export async function managerKubeconfig(repo: string, adminKc: string, dir: string): Promise<string> {
  const k = (args: string[], input?: string) =>
    exec([kubectlBin(), '--kubeconfig', adminKc, ...args], { input, timeoutMs: 60_000 });
  for (const f of [
    'namespace.yaml',
    'serviceaccount.yaml',
    'rbac-cluster.yaml',
    'rbac-kube-system.yaml',
    'rbac-middleware.yaml',
    'rbac-default.yaml',
  ]) {
    await k(['apply', '-f', join(repo, 'k8s', f)]);
  }
  return serviceAccountKubeconfig(adminKc, 'podgate', 'podgate-manager', join(dir, 'manager.kubeconfig'));
}

/** A kubeconfig at `path` that authenticates as ServiceAccount `namespace/name` (a 3 h token). */
export async function serviceAccountKubeconfig(
  adminKc: string,
  namespace: string,
  name: string,
  path: string,
): Promise<string> {
  const k = (args: string[]) => exec([kubectlBin(), '--kubeconfig', adminKc, ...args], { timeoutMs: 60_000 });
  const token = (await k(['-n', namespace, 'create', 'token', name, '--duration=3h'])).stdout.trim();
  const view = await k(['config', 'view', '--raw', '--minify', '-o', 'json']);
  const cfg = JSON.parse(view.stdout) as { clusters: { cluster: Record<string, string> }[] };
  const cluster = cfg.clusters[0]!.cluster;
  const ca =
    cluster['certificate-authority-data'] ??
    Buffer.from(readFileSync(cluster['certificate-authority']!)).toString('base64');
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: cluster.server, 'certificate-authority-data': ca } }],
      users: [{ name, user: { token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: name } }],
      'current-context': 'test',
    }),
    { mode: 0o600 },
  );
  return path;
}

/**
 * A namespace labelled `team: <team>` with one busybox httpd pod (Deployment `web`, label app=web, port
 * 80, answering "hello from web <team>") behind Service `web`: the destinations of the access e2e.
 */
export function teamWorkload(namespace: string, team: string, image: string): Record<string, unknown> {
  const labels = { app: 'web' };
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { team } } },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace, labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [httpdContainer(image, team)] } },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace, labels },
        spec: { selector: labels, ports: [{ port: 80, targetPort: 80 }] },
      },
    ],
  };
}

/** One more bare pod with the `web` labels in `namespace` (a new pod the rules must pick up live). */
export function teamPod(
  namespace: string,
  name: string,
  team: string,
  image: string,
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: 'web' } },
    spec: { terminationGracePeriodSeconds: 0, containers: [httpdContainer(image, team)] },
  };
}

function httpdContainer(image: string, team: string): Record<string, unknown> {
  return {
    name: 'httpd',
    image,
    imagePullPolicy: 'Never',
    command: [
      '/bin/sh',
      '-c',
      `mkdir -p /www && echo "hello from web ${team} $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www`,
    ],
    ports: [{ containerPort: 80 }],
    readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 1 },
  };
}

/**
 * PostgreSQL for the manager on `k8s-postgres/`: a plain Deployment (1 replica, the data on an emptyDir:
 * it lives as long as the suite's cluster) of the Debian postgresql image built here, and Service
 * `podgate-postgres` on 5432, in `namespace`. The container makes its own cluster at start: `initdb`
 * (scram-sha-256 over TCP), the role `podgate` with the password in Secret `passwordSecret` (key
 * `password`, mounted as a file, never on a command line) and the database `podgate` it owns (what
 * k8s/README.md asks of a database), then runs the server on every address of the pod.
 */
export function postgresWorkload(
  namespace: string,
  image: string,
  uid: number,
  passwordSecret: string,
): Record<string, unknown> {
  const labels = { app: 'podgate-postgres' };
  const setup = [
    'set -e',
    'D=/var/lib/postgresql/data/pg',
    'initdb -D "$D" -U postgres -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 --no-sync >/dev/null',
    'echo "host all all 0.0.0.0/0 scram-sha-256" >> "$D/pg_hba.conf"',
    'PW=$(cat /etc/podgate-postgres/password)',
    // single-user mode: one statement per line, no server listening yet (the readiness probe waits)
    `printf "CREATE ROLE podgate LOGIN PASSWORD '%s';\\nCREATE DATABASE podgate OWNER podgate;\\n" "$PW" | postgres --single -D "$D" postgres >/dev/null`,
    'exec postgres -D "$D" -c listen_addresses=\'*\' -c unix_socket_directories=/tmp',
  ].join('\n');
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'podgate-postgres', namespace, labels },
        spec: {
          replicas: 1,
          strategy: { type: 'Recreate' },
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              securityContext: { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid },
              containers: [
                {
                  name: 'postgres',
                  image,
                  imagePullPolicy: 'Never',
                  command: ['/bin/sh', '-c', setup],
                  ports: [{ containerPort: 5432 }],
                  readinessProbe: { tcpSocket: { port: 5432 }, periodSeconds: 1 },
                  volumeMounts: [
                    { name: 'data', mountPath: '/var/lib/postgresql/data' },
                    { name: 'password', mountPath: '/etc/podgate-postgres', readOnly: true },
                  ],
                },
              ],
              volumes: [
                { name: 'data', emptyDir: {} },
                { name: 'password', secret: { secretName: passwordSecret, defaultMode: 0o444 } },
              ],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'podgate-postgres', namespace, labels },
        spec: { selector: labels, ports: [{ port: 5432, targetPort: 5432 }] },
      },
    ],
  };
}
