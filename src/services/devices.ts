import { BadRequest, Conflict } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { validateName } from '../lib/names.js';
import { loadTemplate } from '../lib/templates.js';
import { parseCsr, type ClientKeyType } from '../pki/index.js';
import { wrapTlsCryptV2ClientKey } from '../pki/tls-crypt.js';
import { renderClientProfile } from '../profiles/client-profile.js';
import type { Config } from '../config/schema.js';
import type { CertRecord, Store, User, TxStore } from '../store/types.js';
import { IssueLimits, TooManyIssues } from './issue-limits.js';

const HOUR_MS = 3_600_000;
import { effectiveNetwork, type EffectiveNetwork } from './network.js';
import type { CaSet } from './ca-set.js';
import type { ServerIdentityService } from './server-identity.js';
import type { AddressService } from './addresses.js';

const log = logger.child({ module: 'devices' });
const KEY_TYPES: readonly ClientKeyType[] = ['ec-p256', 'rsa-2048', 'rsa-3072'];

export interface IssueDeviceRequest {
  actor: string;
  /** User name of the owner; must exist and be enabled. */
  owner: string;
  commonName: string;
  deviceName?: string;
  kind?: 'client' | 'gateway';
  keyType?: string;
  /** PKCS#10 request: the key stays on the device and the profile has no <key> block. */
  csrPem?: string;
  /**
   * A user issuing for themselves (web, API): counted against the per-user rate and device maximum,
   * and refused with 503 when the key-generation queue is full. The CLI (an administrator) is not.
   */
  selfService?: boolean;
  /**
   * Renewal (see ./renewal.ts): the current certificate of this common name that the new one replaces;
   * it is marked superseded in the same transaction and revoked at `supersedeAt`. A renewal adds no
   * device, so it is not counted against devices.maxValidPerUser.
   */
  replaces?: { serial: string; supersedeAt: Date };
}

export interface DeviceServiceDeps {
  store: Store;
  /** The CAs in force; profiles come from `current`, read again at every issue (a rotation by another process). */
  cas: CaSet;
  config: Config;
  server: ServerIdentityService;
  now: () => Date;
  /** Shared limits; made from config.devices when absent. */
  limits?: IssueLimits;
  /** Stable tunnel addresses: one is allocated in the transaction that records the certificate. */
  addresses?: AddressService;
  /** Called after a certificate is recorded (publishes the access bundle). */
  changed?: () => Promise<void>;
  /**
   * The hourly issue limit counted across every replica (PostgreSQL: store/pg/rate-window.ts), asked
   * before this process's own count; absent on SQLite, where this process is the only one.
   */
  sharedWindow?: SharedWindow;
}

/**
 * A sliding-window limit shared by replicas: whether one more event of `key` fits, and when not, how
 * long to wait; `forget` gives an admitted event back (the issue failed).
 */
export type SharedWindow = (
  scope: string,
  key: string,
  limit: number,
  windowMs: number,
  now: number,
) => Promise<{ allowed: boolean; retryAfterMs: number; forget?: () => Promise<void> }>;

/**
 * Issuing a device = validate everything, make key + certificate, render the profile, then record the
 * certificate and the audit row in one transaction. The profile (with the private key) is returned once
 * and never stored; if any step fails nothing is recorded and the certificate is simply never used.
 */
export class DeviceService {
  /** Per-process issuance limits and the key-generation queue. */
  readonly limits: IssueLimits;

  constructor(private readonly deps: DeviceServiceDeps) {
    this.limits = deps.limits ?? new IssueLimits(deps.config.devices, () => deps.now().getTime());
  }

  /**
   * Valid, unexpired client certificates of one owner (what devices.maxValidPerUser counts). A
   * certificate in its renewal grace (superseded, revoked when the grace ends) is the same device as its
   * successor: it is not counted.
   */
  async validDevices(ownerId: number, store: TxStore = this.deps.store): Promise<number> {
    const now = this.deps.now().getTime();
    return (await store.listCerts({ ownerId, kind: 'client', status: 'valid' })).items.filter(
      (c) => c.notAfter.getTime() > now && c.supersededBy === null,
    ).length;
  }

  /** Throws unless the owner exists and is enabled, as the store says right now. */
  private async assertEnabled(
    ownerId: number,
    ownerName: string,
    store: TxStore = this.deps.store,
  ): Promise<void> {
    const owner = await store.getUserById(ownerId);
    if (!owner || owner.disabled) throw new BadRequest(`owner: user '${ownerName}' is disabled`, 'owner');
  }

  async issue(req: IssueDeviceRequest): Promise<{ cert: CertRecord; profile: string }> {
    const { store, config } = this.deps;
    const commonName = validateName('commonName', req.commonName);
    const deviceName = validateName('deviceName', req.deviceName ?? req.commonName);
    const ownerName = validateName('owner', req.owner);
    const kind = req.kind ?? 'client';
    if (kind !== 'client' && kind !== 'gateway')
      throw new BadRequest('kind must be "client" or "gateway"', 'kind');
    const keyType = (req.keyType ?? config.vpn.keyType) as ClientKeyType;
    if (!KEY_TYPES.includes(keyType))
      throw new BadRequest(`keyType must be one of ${KEY_TYPES.join(', ')}`, 'keyType');
    const owner = await store.getUserByName(ownerName);
    if (!owner) throw new BadRequest(`owner: user '${ownerName}' does not exist`, 'owner');
    if (owner.disabled) throw new BadRequest(`owner: user '${ownerName}' is disabled`, 'owner');
    const current = await store.getValidCertByCommonName(commonName);
    if (current && current.serial !== req.replaces?.serial) {
      throw new Conflict(
        `commonName '${commonName}' already has a valid certificate; revoke it first`,
        'commonName',
      );
    }
    const network = await effectiveNetwork(config, store);
    if (network.endpoints.length === 0) {
      throw new BadRequest(
        'vpn.endpoints is empty: set it in the config or run `podgate k8s discover`',
        'vpn.endpoints',
      );
    }
    const csr = req.csrPem ? parseCsr(req.csrPem) : undefined;
    // a full client subnet refuses before any key is made (and again, for certain, in the transaction)
    await this.deps.addresses?.assertRoomFor(commonName);
    const selfService = req.selfService === true && kind === 'client';
    // a failed issue gives its slot back in both limits (the shared one and this process's)
    let shared: { forget?: () => Promise<void> } | undefined;
    if (selfService && this.deps.sharedWindow) {
      const perHour = config.devices.issuesPerHour;
      const v = await this.deps.sharedWindow(
        'issue',
        String(owner.id),
        perHour,
        HOUR_MS,
        this.deps.now().getTime(),
      );
      if (!v.allowed) {
        const seconds = Math.ceil(v.retryAfterMs / 1000);
        throw new TooManyIssues(
          `owner: user '${ownerName}' made ${perHour} certificates in the last hour (devices.issuesPerHour); try again in ${Math.ceil(seconds / 60)} minutes`,
          seconds,
        );
      }
      shared = v;
    }
    let release: ((outcome?: 'done' | 'failed') => void) | undefined;
    try {
      release = selfService
        ? this.limits.admit(owner.id, ownerName, await this.validDevices(owner.id), {
            renewal: req.replaces !== undefined,
          })
        : undefined;
      const made = await this.make({
        req,
        owner,
        ownerName,
        commonName,
        deviceName,
        kind,
        keyType,
        csr,
        network,
      });
      release?.('done');
      return made;
    } catch (err) {
      release?.('failed');
      await shared
        ?.forget?.()
        .catch((e: unknown) =>
          log.warn(
            { err: (e as Error).message, owner: ownerName },
            'could not give back a shared issue slot',
          ),
        );
      throw err;
    }
  }

  private async make(o: {
    req: IssueDeviceRequest;
    owner: User;
    ownerName: string;
    commonName: string;
    deviceName: string;
    kind: 'client' | 'gateway';
    keyType: ClientKeyType;
    csr: { publicKeyPem: string } | undefined;
    network: EffectiveNetwork;
  }): Promise<{ cert: CertRecord; profile: string }> {
    const { store, cas, config, server, now } = this.deps;
    await cas.sync(); // another replica may have rotated the CA: issue from the one in force
    const ca = cas.current;
    const { req, owner, ownerName, commonName, deviceName, kind, keyType, csr, network } = o;
    const identity = await server.ensure();
    const sign = () =>
      ca.issue({
        kind,
        commonName,
        days: config.vpn.certDays,
        keyType: csr ? undefined : keyType,
        publicKeyPem: csr?.publicKeyPem,
        now: now(),
      });
    // Key generation waits its turn; an owner disabled meanwhile is not worth a key.
    const issued = csr
      ? await sign()
      : await this.limits.keygen(req.selfService === true, async () => {
          await this.assertEnabled(owner.id, ownerName);
          return sign();
        });
    const tlsCryptV2KeyPem =
      config.vpn.controlChannel === 'tls-crypt-v2'
        ? wrapTlsCryptV2ClientKey(identity.tlsCryptV2ServerKeyPem)
        : undefined;
    const profile = renderClientProfile({
      template: loadTemplate('client.ovpn.hbs'),
      commonName,
      serverName: config.vpn.serverName,
      remotes: network.endpoints.map((host) => ({ host, port: config.vpn.port, proto: config.vpn.proto })),
      caPem: identity.caCertPem, // every CA in force: during a rotation the server's may be the older one
      certPem: issued.certPem,
      keyPem: issued.keyPem,
      tlsCryptV2KeyPem,
      tlsCryptKeyPem: config.vpn.controlChannel === 'tls-crypt' ? identity.tlsCryptKeyPem : undefined,
      issuedAt: issued.notBefore,
      notAfter: issued.notAfter,
    });
    const cert = await store.transaction(async (tx) => {
      // Checked again inside the write transaction: a disable that committed while the key was being
      // made revoked only what was recorded then, so this certificate must not be recorded now.
      await this.assertEnabled(owner.id, ownerName, tx);
      const max = config.devices.maxValidPerUser;
      if (
        req.selfService &&
        !req.replaces &&
        kind === 'client' &&
        (await this.validDevices(owner.id, tx)) >= max
      ) {
        throw new Conflict(
          `owner: user '${ownerName}' already has ${max} valid devices (devices.maxValidPerUser); revoke one first`,
          'owner',
        );
      }
      if (req.replaces)
        await tx.markSuperseding(req.replaces.serial, issued.serial, req.replaces.supersedeAt);
      const row = await tx.insertCert({
        serial: issued.serial,
        commonName,
        ownerId: owner.id,
        deviceName,
        kind,
        keyType: issued.keyType,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        certPem: issued.certPem,
        issuerKeyId: ca.keyId, // which CRL its revocation goes into, even after a CA rotation
        keyFromCsr: csr !== undefined,
      });
      // same transaction: no certificate without an address, no address without its certificate
      const address = (await this.deps.addresses?.allocate(commonName, tx))?.address;
      await tx.appendAudit({
        actor: req.actor,
        action: req.replaces ? 'cert.renew' : 'cert.issue',
        target: commonName,
        result: 'ok',
        details: {
          serial: issued.serial,
          owner: ownerName,
          kind,
          keyType: row.keyType,
          ...(address ? { address } : {}),
          ...(req.replaces ? { renews: req.replaces.serial } : {}),
        },
      });
      return row;
    });
    log.info({ serial: cert.serial, commonName, owner: ownerName, kind }, 'issued');
    await this.deps.changed?.();
    return { cert, profile };
  }
}
