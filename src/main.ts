import { loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { openContext, type ContextDeps } from './services/context.js';
import type { CliEnv, ContextUse } from './cli/env.js';
import { resolve } from 'node:path';
import { LocalCrlPublisher, serverDir } from './openvpn/local-publisher.js';
import { clusterAccessPublisherFor, clusterPublisherFor } from './cluster/cluster-publisher.js';
import { clusterObjectsFor } from './cluster/access-objects.js';
import { LocalAccessPublisher } from './openvpn/access-publisher.js';

/**
 * The composition root: the only place that chooses real dependencies (publishers, Kubernetes
 * client, management socket). Everything else receives them.
 */
export function contextDepsFor(config: Config, use: ContextUse = {}): ContextDeps {
  // Local mode: every revocation lands in <dataDir>/server, where `server run`'s agent picks it up.
  // Cluster mode (kubeconfig configured, or running in a pod): also the podgate-crl Secret for the sidecar.
  const cluster = clusterPublisherFor(config, process.env, { keepWarm: use.longLived === true });
  // Load the Kubernetes client while the store and the CA open, not after the revocation.
  if (use.publishSoon || use.longLived) cluster?.prepare?.();
  // The access bundle goes the same two ways: <dataDir>/server/access.json, and Secret podgate-access.
  const clusterAccess = clusterAccessPublisherFor(config, process.env);
  // A revocation changes the access bundle too (the device leaves it): its Secret is read ahead as well.
  if (use.publishSoon) clusterAccess?.prepare();
  const clusterObjects = clusterObjectsFor(config, process.env);
  const dir = serverDir(resolve(config.dataDir));
  return {
    publishers: [new LocalCrlPublisher(dir), ...(cluster ? [cluster] : [])],
    accessPublishers: [new LocalAccessPublisher(dir), ...(clusterAccess ? [clusterAccess] : [])],
    ...(clusterObjects ? { clusterObjects } : {}),
  };
}

export function realCliEnv(): CliEnv {
  return {
    env: process.env,
    loadConfig: (opts) => loadConfig({ file: opts.config, overrides: { dataDir: opts.dataDir } }),
    openContext,
    contextDeps: contextDepsFor,
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : text + '\n'),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : text + '\n'),
  };
}
