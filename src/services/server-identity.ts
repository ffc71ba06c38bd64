import { X509Certificate } from 'node:crypto';
import { logger } from '../lib/logger.js';
import {
  decryptPrivateKey,
  decryptSecret,
  encryptPrivateKey,
  encryptSecret,
  type KeySecret,
} from '../pki/index.js';
import { generateTlsCryptKey, generateTlsCryptV2ServerKey } from '../pki/tls-crypt.js';
import { LOCK } from '../store/locks.js';
import type { Store } from '../store/types.js';
import type { CaSet } from './ca-set.js';
import type { RevocationService } from './revocation.js';

const log = logger.child({ module: 'server-identity' });
const SETTING = 'server.identity';
const SERVER_CERT_DAYS = 825;
const DAY = 86_400_000;
const RENEW_BEFORE_MS = 30 * DAY;
/**
 * The server certificate leaves the outgoing CA (during a rotation's overlap) this long before that CA
 * ends: its own certificates are capped at the CA's expiry, and clients with new profiles trust both.
 */
const LEAVE_OUTGOING_CA_BEFORE_MS = DAY;

/** What the OpenVPN server needs to start; keys are decrypted only in memory. */
export interface ServerIdentity {
  caCertPem: string;
  certPem: string;
  keyPem: string;
  serial: string;
  tlsCryptV2ServerKeyPem: string;
  tlsCryptKeyPem: string;
}

interface StoredIdentity {
  serial: string;
  commonName: string;
  certPem: string;
  notAfter: string;
  keyEnvelope: string;
  tlsCryptV2Envelope: string;
  tlsCryptEnvelope: string;
}

export interface ServerIdentityDeps {
  store: Store;
  /**
   * The CAs in force, read again at every ensure(). The server certificate comes from the outgoing CA
   * during a rotation's overlap (old profiles trust only it; new profiles carry both CAs); the server
   * trusts, and profiles embed, every CA in force, newest first.
   */
  cas: CaSet;
  secret: KeySecret;
  serverName: string;
  revocation: RevocationService;
  now: () => Date;
}

/**
 * The server certificate (CN = vpn.serverName, EKU serverAuth) and the control-channel keys, made once
 * and kept encrypted at rest like the CA key. A renamed server or one near expiry gets a new certificate;
 * the tls-crypt keys stay, so existing client profiles keep working.
 */
export class ServerIdentityService {
  /** Decrypted once per process: scrypt makes every decryption cost ~0.1 s with a passphrase. */
  private cached: { serial: string; caBundlePem: string; identity: ServerIdentity } | undefined;

  constructor(private readonly deps: ServerIdentityDeps) {}

  private inflight: Promise<ServerIdentity> | undefined;

  /** Concurrent callers share one run: two parallel first issues must not mint two server certificates. */
  ensure(): Promise<ServerIdentity> {
    this.inflight ??= this.ensureOnce().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async ensureOnce(): Promise<ServerIdentity> {
    const { store, cas, secret, serverName, now } = this.deps;
    await cas.sync();
    const at = now().getTime();
    const previous = cas.previous;
    const ca =
      previous && previous.notAfter.getTime() - at > LEAVE_OUTGOING_CA_BEFORE_MS ? previous : cas.current;
    const raw = await store.getSetting(SETTING);
    const stored = raw ? (JSON.parse(raw) as StoredIdentity) : undefined;
    const notAfter = stored ? new Date(stored.notAfter).getTime() : 0;
    // Renewed 30 days before it expires, unless it already ends with its CA (ca.issue caps notAfter
    // there): a new one would end at the same moment, so in the CA's last 30 days every check would
    // issue another (openvpn restarts, the pod rolls, the CRL grows). It is as good as it gets until
    // the CA is rotated.
    const fresh =
      stored &&
      stored.commonName === serverName &&
      notAfter > at &&
      (notAfter - at > RENEW_BEFORE_MS || notAfter >= ca.notAfter.getTime()) &&
      this.issuedBy(stored, ca);
    if (stored && fresh) return this.open(stored, cas);

    const issued = await ca.issue({
      kind: 'server',
      commonName: serverName,
      days: SERVER_CERT_DAYS,
      keyType: 'ec-p256',
      now: now(),
    });
    const next: StoredIdentity = {
      serial: issued.serial,
      commonName: serverName,
      certPem: issued.certPem,
      notAfter: issued.notAfter.toISOString(),
      keyEnvelope: encryptPrivateKey(issued.keyPem!, secret),
      tlsCryptV2Envelope:
        stored?.tlsCryptV2Envelope ?? encryptSecret(Buffer.from(generateTlsCryptV2ServerKey()), secret),
      tlsCryptEnvelope: stored?.tlsCryptEnvelope ?? encryptSecret(Buffer.from(generateTlsCryptKey()), secret),
    };
    // Another process (CLI beside the web app) may have made the identity meanwhile: the transaction
    // serialises writers, and the first one wins; ours is then discarded before anything is recorded.
    // Only the winner supersedes the certificate it replaces, inside the same transaction: revoking
    // "whatever is valid under this name" before knowing who won could revoke the other process's
    // brand-new certificate.
    let superseded = false;
    const winner = await store.transaction(async (tx): Promise<StoredIdentity | undefined> => {
      // locked: on PostgreSQL another replica's transaction may be minting one at this moment
      await tx.lock(LOCK.setting(SETTING));
      const current = await tx.getSetting(SETTING);
      if (current !== raw && current !== undefined) return JSON.parse(current) as StoredIdentity;
      const old = await tx.getValidCertByCommonName(serverName);
      if (old) await this.deps.revocation.revokeInTransaction('system', [old.serial], 'superseded', tx);
      superseded = old !== undefined;
      await tx.insertCert({
        serial: issued.serial,
        commonName: serverName,
        ownerId: null,
        deviceName: serverName,
        kind: 'server',
        keyType: issued.keyType,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        certPem: issued.certPem,
        issuerKeyId: ca.keyId,
      });
      await tx.setSetting(SETTING, JSON.stringify(next));
      await tx.appendAudit({
        actor: 'system',
        action: 'server.cert',
        target: serverName,
        result: 'ok',
        details: { serial: issued.serial },
      });
      return undefined;
    });
    if (winner) return this.open(winner, cas);
    // The CRL signed in the transaction (if an old certificate was superseded) goes to the publishers now.
    if (superseded) await this.deps.revocation.publish();
    log.info({ serial: issued.serial, commonName: serverName }, 'issued the server certificate');
    return this.open(next, cas);
  }

  /** Whether `ca` issued the stored certificate; remembered per (certificate, CA): the timers ask hourly. */
  private issued: { serial: string; caKeyId: string; ok: boolean } | undefined;
  private issuedBy(s: StoredIdentity, ca: { keyId: string; certPem: string }): boolean {
    if (this.issued?.serial !== s.serial || this.issued.caKeyId !== ca.keyId) {
      const ok = new X509Certificate(s.certPem).checkIssued(new X509Certificate(ca.certPem));
      this.issued = { serial: s.serial, caKeyId: ca.keyId, ok };
    }
    return this.issued.ok;
  }

  private open(s: StoredIdentity, cas: CaSet): ServerIdentity {
    const caBundlePem = cas.current.certPem + (cas.previous?.certPem ?? '');
    if (this.cached?.serial === s.serial && this.cached.caBundlePem === caBundlePem)
      return this.cached.identity;
    const { secret } = this.deps;
    const identity: ServerIdentity = {
      caCertPem: caBundlePem,
      certPem: s.certPem,
      serial: s.serial,
      keyPem: decryptPrivateKey(s.keyEnvelope, secret),
      tlsCryptV2ServerKeyPem: decryptSecret(s.tlsCryptV2Envelope, secret).toString('utf8'),
      tlsCryptKeyPem: decryptSecret(s.tlsCryptEnvelope, secret).toString('utf8'),
    };
    this.cached = { serial: s.serial, caBundlePem, identity };
    return identity;
  }
}
