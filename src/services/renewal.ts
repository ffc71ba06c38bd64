import { BadRequest, Conflict } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import type { Config } from '../config/schema.js';
import type { CertRecord, Store } from '../store/types.js';
import type { DeviceService } from './devices.js';
import type { RevocationService } from './revocation.js';

const log = logger.child({ module: 'renewal' });
const DAY = 86_400_000;
const CLIENT_KEY_TYPES = ['ec-p256', 'rsa-2048', 'rsa-3072'];

export interface RenewalServiceDeps {
  store: Store;
  devices: DeviceService;
  revocation: RevocationService;
  config: Config;
  now: () => Date;
}

export interface RenewRequest {
  actor: string;
  /** Serial of the certificate to renew (callers check who may renew it). */
  serial: string;
  /** Key type of the new key (default: the old certificate's, when podgate can generate it). */
  keyType?: string;
  /** PKCS#10 request: the new key stays on the device. Required when the old one came from a request. */
  csrPem?: string;
  /** A user renewing their own device (web, API): rate-limited like a self-service issue. */
  selfService?: boolean;
}

/**
 * Device renewal: a new certificate and profile under the same common name and device name. The old
 * certificate stays valid for `vpn.renewGraceDays` (the device keeps working until the new profile is
 * installed), then the CRL sweep in RevocationService.ensureFreshCrl revokes it as `superseded`. With a
 * grace of 0, or when the old one has already expired, it is revoked as soon as the new profile is handed out.
 */
export class RenewalService {
  constructor(private readonly deps: RenewalServiceDeps) {}

  async renew(r: RenewRequest): Promise<{ cert: CertRecord; profile: string; replaced: CertRecord }> {
    const { store, devices, revocation, config, now } = this.deps;
    const old = await store.getCert(r.serial);
    if (!old) throw new BadRequest(`no certificate with serial ${r.serial}`, 'certificate');
    if (old.kind === 'server')
      throw new BadRequest('the server certificate renews itself; renew devices only', 'certificate');
    if (old.status === 'revoked')
      throw new Conflict(
        `certificate ${old.serial} (${old.commonName}) is revoked; issue a new one`,
        'certificate',
      );
    if (old.supersededBy !== null)
      throw new Conflict(
        `certificate ${old.serial} (${old.commonName}) was already renewed by ${old.supersededBy}`,
        'certificate',
      );
    if (!old.ownerName) throw new BadRequest(`certificate ${old.serial} has no owner`, 'certificate');
    // A device issued from a certificate request keeps its key on the device: its renewal takes a new
    // request too, never a key made here (which would travel in the profile the device never wanted).
    if (old.keyFromCsr && !r.csrPem)
      throw new BadRequest(
        `csr: ${old.commonName} was issued from a certificate request (its private key never left the device); renewing it needs a new certificate request`,
        'csr',
      );
    const at = now();
    const graceEnd = at.getTime() + config.vpn.renewGraceDays * DAY;
    // An expired certificate no longer connects anyway: nothing to wait for.
    const supersedeAt = new Date(Math.min(graceEnd, Math.max(at.getTime(), old.notAfter.getTime())));
    const keyType = r.keyType ?? (CLIENT_KEY_TYPES.includes(old.keyType) ? old.keyType : undefined);
    const { cert, profile } = await devices.issue({
      actor: r.actor,
      owner: old.ownerName,
      commonName: old.commonName,
      deviceName: old.deviceName,
      kind: old.kind,
      ...(keyType ? { keyType } : {}),
      ...(r.csrPem ? { csrPem: r.csrPem } : {}),
      ...(r.selfService ? { selfService: true } : {}),
      replaces: { serial: old.serial, supersedeAt },
    });
    log.info({ serial: cert.serial, renews: old.serial, supersedeAt }, 'renewed');
    // Due now (grace 0 or expired): the sweep revokes it as superseded and publishes the CRL.
    if (supersedeAt.getTime() <= at.getTime()) await revocation.ensureFreshCrl();
    return { cert, profile, replaced: (await store.getCert(old.serial))! };
  }
}
