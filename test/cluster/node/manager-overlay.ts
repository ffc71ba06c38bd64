/**
 * The manager itself in the test cluster: a kustomize overlay on the repository's `k8s/` base, or on its
 * `k8s-postgres/` overlay (2 replicas on PostgreSQL), applied with `kubectl apply -k`, and an HTTP client
 * that reaches its Service from inside the node namespace.
 *
 * The overlay changes only what this node cannot give or what a registry would: the image (built here and
 * imported into containerd, so `imagePullPolicy: Never` and the local reference, also handed to the
 * manager as the OpenVPN server's image) and, on `k8s/`, the data volume (the test node has no storage
 * provisioner, so the `podgate-data` claim would stay Pending: an emptyDir instead; `k8s-postgres/` has
 * no claim already). `env` adds variables a suite sets on purpose (it says why). Everything else is the
 * base as a user applies it.
 */
import { request as httpRequest } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Writes `<dir>/kustomization.yaml` over `<repo>/<base>` (default `k8s`) and returns `dir` (for
 * `kubectl apply -k`).
 */
export function writeManagerOverlay(
  dir: string,
  repo: string,
  image: string,
  options: { base?: 'k8s' | 'k8s-postgres'; env?: Record<string, string> } = {},
): string {
  const base = options.base ?? 'k8s';
  mkdirSync(dir, { recursive: true });
  const at = image.lastIndexOf(':');
  const [name, tag] =
    at > image.lastIndexOf('/') ? [image.slice(0, at), image.slice(at + 1)] : [image, 'latest'];
  const kustomization = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: [relative(dir, join(repo, base))],
    images: [{ name: 'podgate', newName: name, newTag: tag }],
    patches: [
      ...(base === 'k8s'
        ? [
            {
              target: { kind: 'PersistentVolumeClaim', name: 'podgate-data' },
              patch: JSON.stringify({
                $patch: 'delete',
                apiVersion: 'v1',
                kind: 'PersistentVolumeClaim',
                metadata: { name: 'podgate-data', namespace: 'podgate' },
              }),
            },
          ]
        : []),
      {
        target: { kind: 'Deployment', name: 'podgate-manager' },
        patch: JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'podgate-manager', namespace: 'podgate' },
          spec: {
            template: {
              spec: {
                containers: [
                  {
                    name: 'manager',
                    imagePullPolicy: 'Never',
                    env: [
                      { name: 'PODGATE_KUBERNETES_IMAGE', value: image },
                      ...Object.entries(options.env ?? {}).map(([n, value]) => ({ name: n, value })),
                    ],
                  },
                ],
                ...(base === 'k8s'
                  ? { volumes: [{ name: 'data', persistentVolumeClaim: null, emptyDir: {} }] }
                  : {}),
              },
            },
          },
        }),
      },
    ],
  };
  // JSON is YAML: kustomize reads it as is
  writeFileSync(join(dir, 'kustomization.yaml'), JSON.stringify(kustomization, null, 2));
  return dir;
}

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * A small HTTP client over a unix socket (a relay inside the node namespace forwards it to the Service),
 * keeping the session cookie between calls like a browser would.
 */
export class SocketHttp {
  private cookies = new Map<string, string>();
  constructor(
    private readonly socketPath: string,
    private readonly host: string,
  ) {}

  request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpReply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const all: Record<string, string> = { Host: this.host, Accept: 'application/json', ...headers };
    if (payload) {
      all['Content-Type'] = 'application/json';
      all['Content-Length'] = String(payload.length);
    }
    if (this.cookies.size) all.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return new Promise((resolve, reject) => {
      const req = httpRequest({ socketPath: this.socketPath, method, path, headers: all }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          for (const c of res.headers['set-cookie'] ?? []) {
            const [kv] = c.split(';');
            const eq = kv!.indexOf('=');
            if (eq > 0) this.cookies.set(kv!.slice(0, eq).trim(), kv!.slice(eq + 1).trim());
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString(),
          });
        });
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}
