import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import type { Config } from '../config/schema.js';
import { BadRequest } from '../lib/errors.js';
import { parseKubeconfigText } from './kubeconfig-yaml.js';

/**
 * The one reader of kubeconfigs (and of the pod's service account): where the API server is and how
 * to prove who we are. Both ways podgate talks to the API server take what it resolves: the Secret
 * writer over node:https (kube-secrets.ts) and the full @kubernetes/client-node client
 * (kube-client.ts `kubeConfigFor`). A new way of authenticating is added here, once.
 * Loads no Kubernetes client.
 */
export interface KubeTarget {
  /** The API server (serverText() gives it without the trailing slash URL adds). */
  server: URL;
  ca?: Buffer;
  insecure: boolean;
  tlsServerName?: string;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  /** Read again for every request (a projected service-account token is rotated in place). */
  tokenFile?: string;
  /** Where the settings came from, for error messages: `kubeconfig FILE` or `the pod service account`. */
  source: string;
}

/**
 * What the reader found: a target podgate can use itself, or a kubeconfig that only the full client can
 * use (exec credential plugins, auth providers, passwords, impersonation, a proxy, several KUBECONFIG
 * files): `file` (undefined: the client's default chain, for a KUBECONFIG list) and `context` for it.
 */
export type KubeResolution =
  | { target: KubeTarget; full?: undefined }
  | { target?: undefined; full: { file?: string; context?: string; reason: string } };

/** The pod's service account, as the Kubernetes client reads it in a pod. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Named<T> = { name?: unknown } & T;
interface KubeconfigFile {
  'current-context'?: unknown;
  contexts?: Named<{ context?: { cluster?: unknown; user?: unknown } }>[];
  clusters?: Named<{ cluster?: Record<string, unknown> }>[];
  users?: Named<{ user?: Record<string, unknown> }>[];
}

/** User and cluster keys read here; any other (exec, auth-provider, proxy-url, …) needs the full client. */
const USER_KEYS = new Set([
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'token',
  'tokenFile',
  'extensions',
]);
const CLUSTER_KEYS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'tls-server-name',
  'extensions',
]);

const FIELD = 'kubernetes.kubeconfig';

/**
 * Resolves the API server the way the Kubernetes client finds its kubeconfig: kubernetes.kubeconfig,
 * else KUBECONFIG, else ~/.kube/config, else the pod's service account; kubernetes.context, else the
 * file's current-context. Bad input (no such file, not YAML, a context, cluster or user that is not
 * there, no server) is a 400 naming the field. Reads the files it names (certificates, CA) now.
 */
export function resolveKube(
  k8s: Pick<Config['kubernetes'], 'kubeconfig' | 'context'>,
  env: NodeJS.ProcessEnv,
): KubeResolution {
  let file = k8s.kubeconfig || env.KUBECONFIG;
  if (!k8s.kubeconfig && file?.includes(':')) {
    return { full: { context: k8s.context, reason: 'KUBECONFIG names several files' } };
  }
  if (!file) {
    const home = join(env.HOME || homedir(), '.kube', 'config');
    if (existsSync(home)) file = home;
  }
  if (file) return fromKubeconfig(file, k8s.context);
  const sa = serviceAccount(env);
  if (sa) return { target: sa };
  throw new BadRequest(
    `${FIELD}: no kubeconfig (not set, no KUBECONFIG, no ~/.kube/config) and not running in a pod`,
    FIELD,
  );
}

function serviceAccount(env: NodeJS.ProcessEnv): KubeTarget | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const tokenFile = join(SERVICE_ACCOUNT_DIR, 'token');
  if (!host || !existsSync(tokenFile)) return undefined;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  // the client's rule: these ports are plain HTTP
  const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
  return {
    server: new URL(`${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`),
    ca: readFileSync(join(SERVICE_ACCOUNT_DIR, 'ca.crt')),
    insecure: false,
    tokenFile,
    source: 'the pod service account',
  };
}

function fromKubeconfig(file: string, context: string | undefined): KubeResolution {
  const what = `kubeconfig ${file}`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new BadRequest(`${FIELD}: ${what} cannot be read (${code})`, FIELD, err);
  }
  let doc: KubeconfigFile;
  try {
    doc = (parseKubeconfigText(text) ?? {}) as KubeconfigFile;
  } catch (err) {
    throw new BadRequest(
      `${FIELD}: ${what} is not YAML (${(err as Error).message.split('\n')[0]})`,
      FIELD,
      err,
    );
  }
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new BadRequest(`${FIELD}: ${what} is not a kubeconfig`, FIELD);
  const named = <T>(list: unknown, name: unknown): T | undefined =>
    Array.isArray(list) ? (list as Named<T>[]).find((x) => x && x.name === name) : undefined;

  const ctxName = context || doc['current-context'];
  if (typeof ctxName !== 'string' || ctxName === '') {
    throw new BadRequest(
      `kubernetes.context: ${what} has no current-context; set kubernetes.context to one of its contexts`,
      'kubernetes.context',
    );
  }
  const ctx = named<{ context?: { cluster?: unknown; user?: unknown } }>(doc.contexts, ctxName)?.context;
  if (!ctx) {
    throw new BadRequest(
      context
        ? `kubernetes.context: ${what} has no context named "${ctxName}"`
        : `kubernetes.context: the current-context "${ctxName}" of ${what} names no context; set kubernetes.context`,
      'kubernetes.context',
    );
  }
  const cluster = named<{ cluster?: Record<string, unknown> }>(doc.clusters, ctx.cluster)?.cluster;
  if (!cluster) {
    throw new BadRequest(
      `${FIELD}: context "${ctxName}" of ${what} names cluster "${String(ctx.cluster)}", which is not in its clusters`,
      FIELD,
    );
  }
  if (typeof cluster.server !== 'string' || cluster.server === '') {
    throw new BadRequest(`${FIELD}: cluster "${String(ctx.cluster)}" of ${what} has no server`, FIELD);
  }
  let user: Record<string, unknown> = {};
  if (ctx.user !== undefined && ctx.user !== null && ctx.user !== '') {
    const found = named<{ user?: Record<string, unknown> }>(doc.users, ctx.user);
    if (!found) {
      throw new BadRequest(
        `${FIELD}: context "${ctxName}" of ${what} names user "${String(ctx.user)}", which is not in its users`,
        FIELD,
      );
    }
    user = found.user ?? {};
  }
  const other = [
    ...Object.keys(cluster).filter((k) => !CLUSTER_KEYS.has(k)),
    ...Object.keys(user).filter((k) => !USER_KEYS.has(k)),
  ];
  if (other.length > 0) {
    return { full: { file, context: ctxName, reason: `${what} uses ${other.join(', ')}` } };
  }

  const base = dirname(file);
  const path = (p: string) => (isAbsolute(p) ? p : join(base, p));
  const bytes = (key: string, data: unknown, ref: unknown): Buffer | undefined => {
    if (typeof data === 'string' && data) return Buffer.from(data, 'base64');
    if (typeof ref !== 'string' || !ref) return undefined;
    try {
      return readFileSync(path(ref));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new BadRequest(`${FIELD}: ${key} ${ref} of ${what} cannot be read (${code})`, FIELD, err);
    }
  };
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const server = new URL(cluster.server);
  const tokenFile = str(user.tokenFile);
  return {
    target: {
      server,
      ca: bytes(
        'certificate-authority',
        cluster['certificate-authority-data'],
        cluster['certificate-authority'],
      ),
      insecure: cluster['insecure-skip-tls-verify'] === true,
      tlsServerName: str(cluster['tls-server-name']),
      cert: bytes('client-certificate', user['client-certificate-data'], user['client-certificate']),
      key: bytes('client-key', user['client-key-data'], user['client-key']),
      token: str(user.token),
      tokenFile: tokenFile && path(tokenFile),
      source: what,
    },
  };
}

/** The server URL as text for clients that append `/api/...` to it (no trailing slash). */
export function serverText(target: KubeTarget): string {
  return target.server.href.replace(/\/$/, '');
}
