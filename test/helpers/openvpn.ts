/**
 * Real openvpn 2.6 servers and clients for tests, in namespaces from ./netns.ts. A TestPki is made with
 * podgate's own CA code; server.conf comes from podgate's renderer; client configs from the client profile
 * renderer. Every file lives in a temp dir the caller removes; processes are tracked by ./netns.ts.
 */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { configSchema, type VpnConfig } from '../../src/config/schema.js';
import { loadTemplate } from '../../src/lib/templates.js';
import { CertificateAuthority, createCa, type RevokedEntry } from '../../src/pki/index.js';
import {
  generateTlsCryptKey,
  generateTlsCryptV2ServerKey,
  wrapTlsCryptV2ClientKey,
} from '../../src/pki/tls-crypt.js';
import { renderClientProfile } from '../../src/profiles/client-profile.js';
import { renderServerConfig } from '../../src/profiles/server-config.js';
import { OFFICE_NODE_POD, spawnIn, type SpawnedProcess, type Topology } from './netns.js';

/**
 * What an openvpn 2.6 client logs when the server pushed HALT (`client-kill CID HALT`): the reason is
 * `server-pushed-halt`, or, with `explicit-exit-notify` in the profile (podgate's UDP profiles), the
 * line "Halt command was pushed by server" followed by an exit-with-notification.
 */
export const PUSHED_HALT = /server-pushed-halt|Halt command was pushed by server/;

export interface TestPki {
  ca: CertificateAuthority;
  caPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  tlsCryptV2ServerKeyPem: string;
  tlsCryptKeyPem: string;
  crlNumber: number;
  revoked: RevokedEntry[];
  /** Issues a client certificate (ec-p256) valid `days` days from `now`. */
  issueClient(
    cn: string,
    opts?: { days?: number; now?: Date },
  ): Promise<{ serial: string; certPem: string; keyPem: string }>;
  /** Signs the next CRL with `revoked` (adds `serial` when given). */
  nextCrl(serial?: string): string;
}

/** A CA (EC P-384, fast), a server certificate for `serverName`, and control-channel keys. */
export async function makeTestPki(serverName = 'podgate-server'): Promise<TestPki> {
  const material = await createCa({
    commonName: `podgate test CA ${randomBytes(3).toString('hex')}`,
    keyType: 'ec-p384',
    days: 30,
  });
  const ca = CertificateAuthority.load(material);
  const server = await ca.issue({ kind: 'server', commonName: serverName, days: 30 });
  const pki: TestPki = {
    ca,
    caPem: material.certPem,
    serverCertPem: server.certPem,
    serverKeyPem: server.keyPem!,
    tlsCryptV2ServerKeyPem: generateTlsCryptV2ServerKey(),
    tlsCryptKeyPem: generateTlsCryptKey(),
    crlNumber: 0,
    revoked: [],
    async issueClient(cn, opts = {}) {
      const c = await ca.issue({ kind: 'client', commonName: cn, days: opts.days ?? 30, now: opts.now });
      return { serial: c.serial, certPem: c.certPem, keyPem: c.keyPem! };
    },
    nextCrl(serial) {
      if (serial) pki.revoked.push({ serial, revokedAt: new Date(), reason: 'keyCompromise' });
      pki.crlNumber += 1;
      return ca.buildCrl({ number: pki.crlNumber, entries: pki.revoked, nextUpdateDays: 30 });
    },
  };
  return pki;
}

/** A temp dir openvpn's dropped user (`nobody`) can traverse: it reads crl.pem after the drop. */
export function makeServerDir(prefix = 'pg-ovpn-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export interface ServerFilesOut {
  dir: string;
  configPath: string;
  crlPath: string;
  managementSocket: string;
  managementPassword: string;
  pidFile: string;
}

/** The default test VPN config: ports and routes of the office ─ node ─ pod topology. */
export function testVpnConfig(overrides: Record<string, unknown> = {}): VpnConfig {
  return configSchema.parse({
    vpn: {
      routes: { pods: ['10.244.0.0/16'], services: ['10.96.0.0/12'] },
      dns: { servers: ['10.96.0.10'], domain: 'cluster.local', searchDomains: ['svc.cluster.local'] },
      ...overrides,
    },
  }).vpn;
}

/** Writes keys, an initial CRL and server.conf (rendered by podgate) into `dir`. */
export function writeServerFiles(
  dir: string,
  pki: TestPki,
  vpn: VpnConfig,
  /** server.conf's client-config-dir (and whether `ccd-exclusive` goes with it, default yes). */
  ccd?: { dir: string; exclusive?: boolean },
): ServerFilesOut {
  mkdirSync(dir, { recursive: true });
  const secret = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    return join(dir, name);
  };
  const crlPath = join(dir, 'crl.pem');
  writeFileSync(crlPath, pki.nextCrl(), { mode: 0o644 });
  const managementPassword = randomBytes(12).toString('hex');
  const files = {
    ca: secret('ca.crt', pki.caPem),
    cert: secret('server.crt', pki.serverCertPem),
    key: secret('server.key', pki.serverKeyPem),
    tlsCryptV2: secret('tc2-server.key', pki.tlsCryptV2ServerKeyPem),
    tlsCrypt: secret('tc.key', pki.tlsCryptKeyPem),
  };
  const out: ServerFilesOut = {
    dir,
    configPath: join(dir, 'server.conf'),
    crlPath,
    managementSocket: join(dir, 'mgmt.sock'),
    managementPassword,
    pidFile: join(dir, 'openvpn.pid'),
  };
  const text = renderServerConfig({
    template: loadTemplate('server.conf.hbs'),
    vpn,
    crlFile: crlPath,
    managementSocket: out.managementSocket,
    managementPasswordFile: secret('mgmt.pw', `${managementPassword}\n`),
    files,
    ...(ccd ? { clientConfigDir: ccd.dir, clientConfigExclusive: ccd.exclusive ?? true } : {}),
  });
  writeFileSync(out.configPath, text, { mode: 0o600 });
  return out;
}

/** Starts `openvpn --config server.conf` in `ns` (own process group); wait with `waitServerReady`. */
export function startServer(ns: string, files: ServerFilesOut, extraArgs: string[] = []): SpawnedProcess {
  return spawnIn(ns, ['openvpn', '--config', files.configPath, '--writepid', files.pidFile, ...extraArgs], {
    cwd: files.dir,
    logFile: join(files.dir, 'server.log'),
  });
}

export async function waitServerReady(p: SpawnedProcess): Promise<void> {
  await p.waitFor(/Initialization Sequence Completed/, 20_000);
}

export interface ClientOptions {
  remote: string;
  port: number;
  proto?: 'udp' | 'tcp';
  cn: string;
  certPem: string;
  keyPem: string;
  caPem: string;
  /** tls-crypt-v2 client key; omit to test refusal. */
  tlsCryptV2KeyPem?: string;
  serverName?: string;
}

/** A client profile rendered by podgate's client renderer, for a certificate made by the test. */
export function clientProfile(o: ClientOptions): string {
  return renderClientProfile({
    template: loadTemplate('client.ovpn.hbs'),
    commonName: o.cn,
    serverName: o.serverName ?? 'podgate-server',
    remotes: [{ host: o.remote, port: o.port, proto: o.proto ?? 'udp' }],
    caPem: o.caPem,
    certPem: o.certPem,
    keyPem: o.keyPem,
    tlsCryptV2KeyPem: o.tlsCryptV2KeyPem,
    issuedAt: new Date(),
    notAfter: new Date(Date.now() + 86_400_000),
  });
}

/** A client certificate made by a TestPki (`issueClient`'s answer). */
export type TestClientCert = Awaited<ReturnType<TestPki['issueClient']>>;

/**
 * A profile for `cn` that dials the test server on the node (OFFICE_NODE_POD.node:`port`): a certificate
 * issued by `pki` now (or `cert`, to reconnect with one already issued) and a fresh tls-crypt-v2 key.
 */
export async function testClientProfile(
  pki: TestPki,
  cn: string,
  o: { port: number; cert?: TestClientCert },
): Promise<{ profile: string; cert: TestClientCert }> {
  const cert = o.cert ?? (await pki.issueClient(cn));
  const profile = clientProfile({
    remote: OFFICE_NODE_POD.node,
    port: o.port,
    cn,
    caPem: pki.caPem,
    ...cert,
    tlsCryptV2KeyPem: clientTlsKey(pki),
  });
  return { profile, cert };
}

/** What the server pod's start script does: MASQUERADE the client subnet out of the node. */
export async function masqueradeClients(topo: Topology, subnet = '10.140.0.0/16'): Promise<void> {
  await topo.iptables('node', ['-t', 'nat', '-A', 'POSTROUTING', '-s', subnet, '-j', 'MASQUERADE']);
}

/** Wraps a fresh tls-crypt-v2 client key with the test server key. */
export function clientTlsKey(pki: TestPki): string {
  return wrapTlsCryptV2ClientKey(pki.tlsCryptV2ServerKeyPem);
}

/**
 * Starts `openvpn --config <profile>` in `ns`. Extra args go after the profile (e.g. a faster
 * `--connect-retry`). The client's log is its output (`p.output()`).
 */
export function startClient(
  ns: string,
  dir: string,
  name: string,
  profile: string,
  extraArgs: string[] = [],
): SpawnedProcess {
  const path = join(dir, `${name}.ovpn`);
  writeFileSync(path, profile, { mode: 0o600 });
  return spawnIn(ns, ['openvpn', '--config', path, '--verb', '4', ...extraArgs], {
    cwd: dir,
    logFile: join(dir, `${name}.log`),
  });
}

export async function waitClientConnected(p: SpawnedProcess, timeoutMs = 20_000): Promise<void> {
  await p.waitFor(/Initialization Sequence Completed/, timeoutMs);
}
