import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { AppError, BadRequest } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { validateDeviceName, validateName } from '../lib/names.js';
import type { CertRecord, Store, User } from '../store/types.js';
import type { DeviceService } from './devices.js';

const log = logger.child({ module: 'import-links' });

/** The path OpenVPN Connect fetches (`openvpn://import-profile/<public base><path>?token=…`). */
export const IMPORT_PATH = '/import/profile';
const KEY_TYPES = ['ec-p256', 'rsa-2048', 'rsa-3072'];

/** 410: the link was already used or has expired; nothing was issued. */
export class LinkGone extends AppError {
  constructor(message: string) {
    super(410, 'gone', message);
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * The origin import links are built on, or a 400 naming `web.publicUrl`: OpenVPN Connect (and OpenVPN
 * for Android) only follow https links, so plain http is accepted for loopback addresses only.
 */
export function importBase(publicUrl: string | undefined, requestOrigin: string): string {
  const base = (publicUrl ?? requestOrigin).replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new BadRequest(`web.publicUrl: "${base}" is not a URL`, 'web.publicUrl');
  }
  if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname))) return url.origin;
  throw new BadRequest(
    `web.publicUrl: import links need https (got ${url.origin}); set web.publicUrl to the https address of podgate`,
    'web.publicUrl',
  );
}

export interface ImportLinkServiceDeps {
  store: Store;
  devices: DeviceService;
  /** Minutes a link stays valid (`web.importLinkMinutes`). */
  minutes: number;
  now: () => Date;
}

export interface MadeLink {
  /** What Connect opens: `openvpn://import-profile/https://…`. */
  link: string;
  /** The https URL inside it. */
  url: string;
  expiresAt: Date;
  deviceName: string;
}

/**
 * One-use links that hand a new device profile to OpenVPN Connect without a file. Making a link
 * stores only the sha256 of a 256-bit token, the device name and who made it from where; the key
 * pair and certificate are made when the link is first fetched (like a download), which marks it
 * used first, so a second or racing fetch is refused and issues nothing.
 */
export class ImportLinkService {
  constructor(private readonly deps: ImportLinkServiceDeps) {}

  async create(o: { user: User; deviceName: string; keyType?: string; ip: string; base: string }): Promise<MadeLink> {
    const { store, now, minutes } = this.deps;
    const deviceName = validateDeviceName('name', o.deviceName);
    const commonName = `${o.user.name}.${deviceName}`;
    try {
      validateName('name', commonName);
    } catch {
      throw new BadRequest(`name is too long: "${commonName}" must be at most 64 characters`, 'name');
    }
    if (o.keyType !== undefined && !KEY_TYPES.includes(o.keyType))
      throw new BadRequest(`keyType must be one of ${KEY_TYPES.join(', ')}`, 'keyType');
    if (await store.getValidCertByCommonName(commonName))
      throw new BadRequest(
        `name: a device named "${deviceName}" already exists; revoke it or pick another name`,
        'name',
      );
    const token = randomBytes(32).toString('base64url');
    const created = now();
    const expiresAt = new Date(created.getTime() + minutes * 60_000);
    await store.transaction(async (tx) => {
      const row = await tx.createImportLink({
          userId: o.user.id,
          tokenHash: sha256(token),
          deviceName,
          keyType: o.keyType ?? null,
          createdAt: created,
          createdIp: o.ip,
          expiresAt,
      });
      await tx.appendAudit({
        actor: o.user.name,
        action: 'import-link.create',
        target: commonName,
        result: 'ok',
        details: { linkId: row.id, ip: o.ip, expiresAt: expiresAt.toISOString() },
      });
    });
    const url = `${o.base}${IMPORT_PATH}?token=${token}`;
    return { link: `openvpn://import-profile/${url}`, url, expiresAt, deviceName };
  }

  /** Issues the device of this link once; 410 when used or expired, 404 when unknown. */
  async redeem(token: string, ip: string): Promise<{ cert: CertRecord; profile: string }> {
    const { store, devices, now } = this.deps;
    const link = /^[A-Za-z0-9_-]{43}$/.test(token) ? await store.findImportLinkByHash(sha256(token)) : undefined;
    if (!link)
      throw new AppError(404, 'not_found', 'unknown import link; make a new one on the devices page');
    const at = now();
    if (!(await store.claimImportLink(link.id, at, ip))) {
      const used = link.usedAt !== null || (await store.findImportLinkByHash(sha256(token)))?.usedAt;
      await store.appendAudit({
        actor: 'anonymous',
        action: 'import-link.refused',
        target: `${link.userName}.${link.deviceName}`,
        result: 'error',
        details: { linkId: link.id, ip, reason: used ? 'used' : 'expired' },
      });
      throw new LinkGone(
        used
          ? 'this import link was already used; make a new one on the devices page'
          : 'this import link has expired; make a new one on the devices page',
      );
    }
    try {
      const issued = await devices.issue({
        actor: link.userName,
        owner: link.userName,
        commonName: `${link.userName}.${link.deviceName}`,
        deviceName: link.deviceName,
        kind: 'client',
        selfService: true,
        ...(link.keyType ? { keyType: link.keyType } : {}),
      });
      await store.transaction(async (tx) => {
        await tx.setImportLinkSerial(link.id, issued.cert.serial);
        await tx.appendAudit({
          actor: link.userName,
          action: 'import-link.fetch',
          target: issued.cert.commonName,
          result: 'ok',
          details: { linkId: link.id, ip, serial: issued.cert.serial },
        });
      });
      log.info({ serial: issued.cert.serial, commonName: issued.cert.commonName, ip }, 'import link fetched');
      return issued;
    } catch (err) {
      // Nothing was issued: give the link back so a passing refusal (queue full) does not burn it.
      await store.releaseImportLink(link.id);
      throw err;
    }
  }
}
