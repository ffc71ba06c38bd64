import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { CertificateAuthority } from '../pki/index.js';
import { openStore } from '../store/index.js';
import type { Store } from '../store/types.js';
import type { CrlPublisher } from '../openvpn/revocation-bundle.js';
import { logger } from '../lib/logger.js';
import { loadOrCreateCa } from './ca-files.js';
import { secureDataDir } from './data-dir.js';
import { DeviceService } from './devices.js';
import { RevocationService } from './revocation.js';
import { ServerIdentityService } from './server-identity.js';
import { UserService } from './users.js';

const log = logger.child({ module: 'context' });

/** Everything the faces of podgate (CLI, web, agent) operate on, built once by the composition root. */
export interface AppContext {
  config: Config;
  /** Absolute data dir. */
  dataDir: string;
  /** Set when the data dir's mode was too open at start (and what was done about it); commands print it. */
  dataDirNote?: string;
  store: Store;
  ca: CertificateAuthority;
  users: UserService;
  devices: DeviceService;
  revocation: RevocationService;
  server: ServerIdentityService;
  now: () => Date;
  close(): void;
}

export interface ContextDeps {
  publishers?: CrlPublisher[];
  now?: () => Date;
}

/**
 * Opens the store and the CA (creating both on first use) and wires the services.
 * The first CRL is signed here so that `/crl.pem` and the server always have one.
 */
export async function openContext(config: Config, deps: ContextDeps = {}): Promise<AppContext> {
  const dataDir = resolve(config.dataDir);
  const { note: dataDirNote } = secureDataDir(dataDir);
  if (dataDirNote) log.warn({ dataDir }, dataDirNote);
  const now = deps.now ?? (() => new Date());
  const { ca, secret } = await loadOrCreateCa(config, dataDir);
  const store = openStore(dataDir);
  try {
    const revocation = new RevocationService({
      store,
      ca,
      crlDays: config.vpn.crlDays,
      publishers: [...(deps.publishers ?? [])],
      now,
    });
    const server = new ServerIdentityService({
      store,
      ca,
      secret,
      serverName: config.vpn.serverName,
      revocation,
      now,
    });
    const users = new UserService({ store, revocation });
    const devices = new DeviceService({ store, ca, config, server, now });
    if (!store.getCrl()) await revocation.ensureFreshCrl();
    return {
      config,
      dataDir,
      ...(dataDirNote ? { dataDirNote } : {}),
      store,
      ca,
      users,
      devices,
      revocation,
      server,
      now,
      close: () => store.close(),
    };
  } catch (err) {
    store.close();
    throw err;
  }
}
