import { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config/schema.js';
import { withBastion, type BastionTunnel } from '../gateway/ssh-tunnel.js';
import type { KubeApi } from './kube-api.js';
import { createKubeApi, kubeConfigFor } from './kube-client.js';
import { resolveKube, type KubeResolution } from './kubeconfig.js';

/** A KubeApi and the means to release what it holds (the SSH tunnel, when there is one). */
export interface KubeConnection {
  api: KubeApi;
  close(): Promise<void>;
}

/**
 * The Kubernetes API as config says to reach it, on the full client: directly, or, with
 * `kubernetes.sshBastion`, through an ssh2 forwarded connection opened on the first call. The server URL
 * is swapped for the tunnel's loopback end, keeping the API server's name for TLS verification.
 * `resolved` is what kubeconfig.ts read (resolveKube), when the caller has it already.
 */
export function connectKube(
  config: Config,
  env: NodeJS.ProcessEnv,
  resolved: KubeResolution = resolveKube(config.kubernetes, env),
): KubeConnection {
  const kc = kubeConfigFor(resolved);
  if (!config.kubernetes.sshBastion) return { api: createKubeApi(kc), close: async () => {} };

  let opened: Promise<{ api: KubeApi; tunnel: BastionTunnel }> | undefined;
  const open = () =>
    (opened ??= (async () => {
      const current = kc.getCurrentCluster()!;
      const tunnel = await withBastion(config, current.server);
      const through = new KubeConfig();
      through.loadFromOptions({
        clusters: kc.clusters.map((c) =>
          c.name === current.name
            ? { ...c, server: tunnel.url, tlsServerName: tunnel.tlsServerName ?? c.tlsServerName }
            : c,
        ),
        users: kc.users,
        contexts: kc.contexts,
        currentContext: kc.currentContext,
      });
      return { api: createKubeApi(through), tunnel };
    })());
  const api: KubeApi = {
    get: async (...a) => (await open()).api.get(...a),
    list: async (...a) => (await open()).api.list(...a),
    apply: async (...a) => (await open()).api.apply(...a),
    create: async (...a) => {
      const inner = (await open()).api;
      if (!inner.create) throw new Error('this Kubernetes client cannot create objects');
      return inner.create(...a);
    },
    createDryRun: async (...a) => (await open()).api.createDryRun(...a),
    canI: async (...a) => (await open()).api.canI(...a),
    whoAmI: async () => (await open()).api.whoAmI(),
    mergePatch: async (...a) => (await open()).api.mergePatch(...a),
    watch: async (...a) => (await open()).api.watch(...a),
  };
  return {
    api,
    close: async () => {
      if (opened) await (await opened).tunnel.close();
    },
  };
}
