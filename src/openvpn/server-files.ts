/**
 * The files `podgate server run` gives openvpn, under `<dataDir>/server/`: server.conf (rendered by
 * profiles/server-config), the CA and server certificates, keys (0600, read by root before openvpn drops
 * privileges), the management password, and the CRL openvpn re-reads after the drop.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { BadRequest } from '../lib/errors.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { loadTemplate } from '../lib/templates.js';
import { renderServerConfig } from '../profiles/server-config.js';
import { serverDir } from './local-publisher.js';

export interface ServerPaths {
  dir: string;
  config: string;
  ca: string;
  cert: string;
  key: string;
  tlsCryptV2: string;
  tlsCrypt: string;
  managementSocket: string;
  managementPasswordFile: string;
  pidFile: string;
  /** The CRL openvpn's crl-verify reads; written only by the agent, after verification. */
  activeCrl: string;
  /** client-config-dir kept by the access agent; next to the CRL (readable after the privilege drop). */
  ccdDir: string;
}

/** Unix socket paths longer than this fail at bind time with an unhelpful message. */
const MAX_SOCKET_PATH = 107;

/** True when a process of another user can traverse every directory down to `dir`. */
function traversableByOthers(dir: string): boolean {
  let d = resolve(dir);
  for (;;) {
    try {
      if ((statSync(d).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    const parent = dirname(d);
    if (parent === d) return true;
    d = parent;
  }
}

/**
 * Where everything lives. The active CRL must stay readable after openvpn drops to `vpn.user`; the data
 * dir is 0700, so when privileges are dropped and the data dir is closed to others, the active CRL goes
 * to `/run/podgate/<hash of the data dir>/` (0755) instead of widening the data dir's permissions.
 */
export function serverPaths(config: Config): ServerPaths {
  const dataDir = resolve(config.dataDir);
  const dir = serverDir(dataDir);
  const dropped = config.vpn.user !== '';
  const crlDir =
    dropped && !traversableByOthers(dataDir)
      ? join('/run/podgate', createHash('sha256').update(dataDir).digest('hex').slice(0, 16))
      : dir;
  const paths: ServerPaths = {
    dir,
    config: join(dir, 'server.conf'),
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
    tlsCryptV2: join(dir, 'tls-crypt-v2-server.key'),
    tlsCrypt: join(dir, 'tls-crypt.key'),
    managementSocket: join(dir, 'mgmt.sock'),
    managementPasswordFile: join(dir, 'mgmt.pw'),
    pidFile: join(dir, 'openvpn.pid'),
    activeCrl: join(crlDir, 'openvpn-crl.pem'),
    ccdDir: join(crlDir, 'ccd'),
  };
  if (paths.managementSocket.length > MAX_SOCKET_PATH) {
    throw new BadRequest(`dataDir is too long for a unix socket path (${paths.managementSocket})`, 'dataDir');
  }
  return paths;
}

/** Renders server.conf text for these paths (used by `server config` and `server run`). */
export function renderServerConfigFor(
  config: Config,
  paths: ServerPaths,
  access: { identity: boolean } = { identity: false },
): string {
  const v2 = config.vpn.controlChannel === 'tls-crypt-v2';
  return renderServerConfig({
    template: loadTemplate('server.conf.hbs'),
    vpn: config.vpn,
    crlFile: paths.activeCrl,
    managementSocket: paths.managementSocket,
    managementPasswordFile: paths.managementPasswordFile,
    clientConfigDir: access.identity ? paths.ccdDir : undefined,
    files: {
      ca: paths.ca,
      cert: paths.cert,
      key: paths.key,
      tlsCryptV2: v2 ? paths.tlsCryptV2 : undefined,
      tlsCrypt: v2 ? undefined : paths.tlsCrypt,
    },
  });
}

export interface ServerIdentityFiles {
  caCertPem: string;
  certPem: string;
  keyPem: string;
  tlsCryptV2ServerKeyPem: string;
  tlsCryptKeyPem: string;
}

/**
 * Writes the identity, a management password (kept across restarts) and server.conf. Everything is
 * 0600 except the directories; openvpn reads them as root before dropping privileges.
 */
export function writeServerFiles(
  config: Config,
  paths: ServerPaths,
  id: ServerIdentityFiles,
  access: { identity: boolean } = { identity: false },
): { managementPassword: string } {
  mkdirSync(paths.dir, { recursive: true, mode: 0o755 });
  const crlDir = dirname(paths.activeCrl);
  if (crlDir !== paths.dir) {
    pruneRuntimeDirs(dirname(crlDir));
    mkdirSync(crlDir, { recursive: true, mode: 0o755 });
    // Names the data dir this runtime dir belongs to, so a later start can prune it once that is gone.
    writeFileAtomic(join(crlDir, 'data-dir'), `${resolve(config.dataDir)}\n`, 0o644, { durable: false });
  }
  const text = renderServerConfigFor(config, paths, access); // render first: a bad config changes nothing
  // openvpn refuses to start without the directory; an empty one refuses every device (ccd-exclusive).
  if (access.identity) mkdirSync(paths.ccdDir, { recursive: true, mode: 0o755 });
  // Rewritten from the store at every start: no fsync (a power cut loses nothing the next start does
  // not write again), which was a good part of `server run`'s start-up.
  const derived = { durable: false };
  writeFileAtomic(paths.ca, id.caCertPem, 0o600, derived);
  writeFileAtomic(paths.cert, id.certPem, 0o600, derived);
  writeFileAtomic(paths.key, id.keyPem, 0o600, derived);
  if (config.vpn.controlChannel === 'tls-crypt-v2')
    writeFileAtomic(paths.tlsCryptV2, id.tlsCryptV2ServerKeyPem, 0o600, derived);
  else writeFileAtomic(paths.tlsCrypt, id.tlsCryptKeyPem, 0o600, derived);
  let managementPassword = existsSync(paths.managementPasswordFile)
    ? readFileSync(paths.managementPasswordFile, 'utf8').split('\n')[0]!.trim()
    : '';
  if (!managementPassword) {
    managementPassword = randomBytes(24).toString('base64url');
    writeFileAtomic(paths.managementPasswordFile, `${managementPassword}\n`, 0o600);
  }
  writeFileAtomic(paths.config, text, 0o600, derived);
  return { managementPassword };
}

/**
 * Removes runtime dirs under /run/podgate whose data dir no longer exists (left by a `server run`
 * that was SIGKILLed and so could not clean up after itself).
 */
function pruneRuntimeDirs(root: string): void {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return;
  }
  for (const e of entries) {
    const d = join(root, e);
    let owner: string | undefined;
    try {
      owner = readFileSync(join(d, 'data-dir'), 'utf8').trim();
    } catch {
      owner = undefined;
    }
    // Only dirs this code made (hex name) and whose owner is known to be gone, or that were never finished.
    if (!/^[0-9a-f]{16}$/.test(e)) continue;
    // An unfinished (empty) dir may belong to a start happening right now: only old ones go.
    const unfinished =
      owner === undefined && readdirSync(d).length === 0 && Date.now() - statSync(d).mtimeMs > 60_000;
    if (unfinished || (owner !== undefined && !existsSync(owner)))
      rmSync(d, { recursive: true, force: true });
  }
}

/** Reads the management password `server run` wrote (for `podgate sessions` and the web app). */
export function readManagementPassword(paths: ServerPaths): string {
  try {
    return readFileSync(paths.managementPasswordFile, 'utf8').split('\n')[0]!.trim();
  } catch {
    throw new BadRequest(
      `no management password at ${paths.managementPasswordFile}: is \`podgate server run\` set up?`,
      'dataDir',
    );
  }
}
