import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { CertificateAuthority, KeySecret } from '../pki/index.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import type { CrlPublisher } from '../openvpn/revocation-bundle.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { logger } from '../lib/logger.js';
import { removeStaleScratchDirs, removeStaleTempFiles } from '../lib/fs-atomic.js';
import { serverDir } from '../openvpn/local-publisher.js';
import { existingCaSecret, loadOrCreateCa, SHARED_CA_FILES } from './ca-files.js';
import { storeTarget } from '../config/load.js';
import { KEK_FILE } from './key-secret.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest } from '../lib/errors.js';
import { DataDirCaSet, type CaSet } from './ca-set.js';
import { secureDataDir } from './data-dir.js';
import { DeviceService, type SharedWindow } from './devices.js';
import type { SharedLimits } from './shared-limits.js';
import { RenewalService } from './renewal.js';
import { RevocationService } from './revocation.js';
import { ServerIdentityService } from './server-identity.js';
import { UserService } from './users.js';
import type { AccessPublisher } from '../openvpn/access-publisher.js';
import { AddressService } from './addresses.js';
import { AccessService } from './access.js';
import { AccessQueries } from './access-queries.js';
import type { ClusterObjects } from './access-check.js';
import { GroupService } from './groups.js';

const log = logger.child({ module: 'context' });

/** Everything the faces of podgate (CLI, web, agent) operate on, built once by the composition root. */
export interface AppContext {
  config: Config;
  /** Absolute data dir. */
  dataDir: string;
  /** Set when the data dir's mode was too open at start (and what was done about it); commands print it. */
  dataDirNote?: string;
  store: Store;
  /**
   * The CAs in force, reloaded from the data dir when `podgate ca rotate` / `ca retire-old` change them
   * (the services refresh it before they issue or sign); `ca` and `previousCa` read it.
   */
  cas: CaSet;
  /** The issuing CA (cas.current, as of the last refresh). */
  readonly ca: CertificateAuthority;
  /** The outgoing CA while a rotation's overlap lasts (`podgate ca rotate` … `ca retire-old`). */
  readonly previousCa?: CertificateAuthority;
  users: UserService;
  devices: DeviceService;
  renewal: RenewalService;
  revocation: RevocationService;
  server: ServerIdentityService;
  /** Stable tunnel addresses of devices. */
  addresses: AddressService;
  /** Local groups and every user's memberships (local, single sign-on, built-in admins). */
  groups: GroupService;
  /** Access rules, the mode, and the bundle published to the enforcement points. */
  access: AccessService;
  /** "May USER reach X", "what can USER reach", "who can reach X". */
  accessQueries: AccessQueries;
  /** The cluster's namespaces, Services and pods (labels and addresses), when a cluster is configured. */
  clusterObjects?: ClusterObjects;
  /** Limits counted across every replica (PostgreSQL); absent on SQLite (one `serve` per data dir). */
  sharedLimits?: SharedLimits;
  now: () => Date;
  /** The clock the long-running timers use (`serve`, `server run`, backups); `now` reads it. */
  clock: Clock;
  close(): Promise<void>;
}

export interface ContextDeps {
  publishers?: CrlPublisher[];
  /** Where the access bundle goes (file in local mode, plus the Secret in cluster mode). */
  accessPublishers?: AccessPublisher[];
  clusterObjects?: ClusterObjects;
  /** What "now" is for the services (default: the clock's). */
  now?: () => Date;
  /** The timers' clock (default: the system clock); tests move one by hand to live through months. */
  clock?: Clock;
  /**
   * A command that only reads (`cert list`): an existing CA is read from its files when first used,
   * not at open, so listing does not decrypt the CA key. Commands that change anything leave it unset:
   * a wrong passphrase must stop them before they change anything.
   */
  readOnly?: boolean;
}

/**
 * Opens the store and the CA (creating both on first use) and wires the services.
 * The first CRL is signed here so that `/crl.pem` and the server always have one.
 */
export async function openContext(config: Config, deps: ContextDeps = {}): Promise<AppContext> {
  const dataDir = resolve(config.dataDir);
  const { note: dataDirNote } = secureDataDir(dataDir);
  if (dataDirNote) log.warn({ dataDir }, dataDirNote);
  // A writer killed between its temp file and the rename leaves `.NAME.PID.RANDOM.tmp` behind.
  for (const dir of [dataDir, serverDir(dataDir)]) {
    const removed = removeStaleTempFiles(dir);
    if (removed.length > 0) log.info({ dir, removed }, 'removed temp files left by killed writers');
  }
  // A backup or restore killed mid-way leaves its scratch dir (a database copy, CA key material).
  const scratch = removeStaleScratchDirs(dataDir);
  if (scratch.length > 0) log.info({ dataDir, removed: scratch }, 'removed scratch dirs of killed backups');
  const clock = deps.clock ?? systemClock;
  const now = deps.now ?? (() => clock.now());
  const { store, loaded, secret, syncFiles, pullFiles, sharedLimits } = await openStoreAndCa(
    config,
    dataDir,
    deps.readOnly === true,
  );
  const sharedWindow: SharedWindow | undefined = sharedLimits
    ? async (scope, key, limit, windowMs, at) => ({
        ...(await sharedLimits.admit(scope, key, limit, windowMs, at)),
        // an issue that fails gives its counted slot back
        forget: () => sharedLimits.forget(scope, key, at),
      })
    : undefined;
  try {
    const cas = new DataDirCaSet(
      dataDir,
      secret,
      loaded && { ca: loaded.ca, ...(loaded.previous ? { previous: loaded.previous } : {}) },
      pullFiles,
    );
    const revocation = new RevocationService({
      store,
      cas,
      crlDays: config.vpn.crlDays,
      // the default keeps the day-since-thisUpdate rule; a shorter refresh counts from the signing time
      ...(config.vpn.crlRefreshSeconds < 86_400 ? { refreshMs: config.vpn.crlRefreshSeconds * 1000 } : {}),
      publishers: [...(deps.publishers ?? [])],
      now,
    });
    const server = new ServerIdentityService({
      store,
      cas,
      secret,
      serverName: config.vpn.serverName,
      revocation,
      now,
    });
    const addresses = new AddressService({
      store,
      clientSubnet: config.vpn.clientSubnet,
      graceDays: config.vpn.renewGraceDays,
      now,
    });
    // late-bound: groups publish through access, access resolves groups
    const changed = (): Promise<void> => access.changed();
    const groups: GroupService = new GroupService({ store, changed });
    const access: AccessService = new AccessService({
      store,
      ...(config.access.mode ? { configMode: config.access.mode } : {}),
      groups,
      addresses,
      publishers: [...(deps.accessPublishers ?? [])],
      now,
    });
    const accessQueries = new AccessQueries({ store, access, groups, now });
    // every CRL publication (revoke, disable, superseded renewals) changes who may connect
    revocation.addPublisher({ name: 'access-bundle', publish: () => access.changed() });
    const users = new UserService({ store, revocation, changed });
    const devices = new DeviceService({
      store,
      cas,
      config,
      server,
      now,
      addresses,
      changed,
      ...(sharedWindow ? { sharedWindow } : {}),
    });
    const renewal = new RenewalService({ store, devices, revocation, config, now });
    if (!(await store.getCrl())) await revocation.ensureFreshCrl();
    return {
      config,
      dataDir,
      ...(dataDirNote ? { dataDirNote } : {}),
      store,
      cas,
      get ca() {
        return cas.current;
      },
      get previousCa() {
        return cas.previous;
      },
      users,
      devices,
      renewal,
      revocation,
      server,
      addresses,
      groups,
      access,
      accessQueries,
      ...(deps.clusterObjects ? { clusterObjects: deps.clusterObjects } : {}),
      ...(sharedLimits ? { sharedLimits } : {}),
      now,
      clock,
      // PostgreSQL: CA files changed by this process (ca rotate) go back to the database first
      close: () => syncFiles().finally(() => store.close()),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * The store and the CA. SQLite: the CA files are in the data dir. PostgreSQL: they are in the database
 * (docs/postgres.md); the data dir is this replica's copy, pulled before the CA is loaded (or created,
 * under a lock, so replicas starting together make one CA) and pushed back when the context closes
 * (a CLI `ca rotate` changed them).
 */
async function openStoreAndCa(
  config: Config,
  dataDir: string,
  readOnly: boolean,
): Promise<{
  store: Store;
  /** Undefined: a read-only open of an existing CA, read from its files when first used. */
  loaded?: Awaited<ReturnType<typeof loadOrCreateCa>>;
  secret: KeySecret;
  syncFiles(): Promise<void>;
  /** PostgreSQL: brings the data dir's CA files up to date when another replica changed them. */
  pullFiles?: () => Promise<void>;
  sharedLimits?: SharedLimits;
}> {
  const target = storeTarget(config);
  if (target.engine === 'sqlite') {
    const deferred = readOnly ? existingCaSecret(config, dataDir) : undefined;
    const loaded = deferred ? undefined : await loadOrCreateCa(config, dataDir);
    const secret = deferred ?? loaded!.secret;
    return { store: openStore(dataDir), ...(loaded ? { loaded } : {}), secret, syncFiles: async () => {} };
  }
  const [{ PgStore }, files, rate] = await Promise.all([
    import('../store/pg/pg-store.js'),
    import('../store/pg/shared-files.js'),
    import('../store/pg/rate-window.js'),
  ]);
  const store = await PgStore.open(target);
  try {
    const { result: loaded, version } = await store.withDb((db) =>
      files.withSharedFiles(db, dataDir, SHARED_CA_FILES, async () => {
        // a key file made here would exist on this replica only: the others could never open the CA
        const hasCa = files.matchingFiles(dataDir, SHARED_CA_FILES).length > 0;
        if (!hasCa && !config.ca.passphraseFile && !existsSync(join(dataDir, KEK_FILE))) {
          throw new BadRequest(
            'ca.passphraseFile is required to create the CA with a PostgreSQL store (every replica needs the same secret)',
            'ca.passphraseFile',
          );
        }
        return loadOrCreateCa(config, dataDir);
      }),
    );
    let seen = version;
    return {
      store,
      loaded,
      secret: loaded.secret,
      pullFiles: async () => {
        seen = await store.withDb((db) => files.pullWhenChanged(db, dataDir, SHARED_CA_FILES, seen));
      },
      syncFiles: async () => {
        await store.withDb((db) => files.pushSharedFiles(db, dataDir, SHARED_CA_FILES));
      },
      sharedLimits: {
        admit: (scope, key, limit, windowMs, at, backoffMs) =>
          store.withDb((db) => rate.admitInWindow(db, scope, key, limit, windowMs, at, backoffMs)),
        forget: (scope, key, at) => store.withDb((db) => rate.forgetInWindow(db, scope, key, at)),
        newest: (scope, key, since) => store.withDb((db) => rate.newestInWindow(db, scope, key, since)),
        mark: (scope, key, at) => store.withDb((db) => rate.markInWindow(db, scope, key, at)),
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
