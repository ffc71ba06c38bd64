import { passwordSignInAllowed, passwordSignInHint } from '../auth/local-login.js';
import { BadRequest, NotFound, Unauthorized } from '../lib/errors.js';
import { validateDeviceName, validateName } from '../lib/names.js';
import { parseSerial } from '../lib/serial.js';
import type { AppContext } from '../services/context.js';
import { effectiveNetwork, type EffectiveNetwork } from '../services/network.js';
import type { CertRecord, RevocationReason, User } from '../store/types.js';
import { logger } from '../lib/logger.js';
import type { LoginThrottle } from './login-throttle.js';
import type { SharedAttempt, SharedLoginGate } from './shared-login-gate.js';
import type { SessionManager, WebSession } from './session.js';

const log = logger.child({ module: 'web-actions' });

/** A certificate as pages and the API show it (never the key, which is not stored anyway). */
export interface DeviceView {
  id: string;
  serial: string;
  name: string;
  commonName: string;
  owner: string | null;
  kind: string;
  keyType: string;
  createdAt: Date;
  notAfter: Date;
  status: 'valid' | 'revoked' | 'expired';
  revokedAt: Date | null;
  revocationReason: string | null;
  lastSeenAt: Date | null;
  /** Renewed: the serial of the new certificate, and when this one is revoked as superseded. */
  renewedBy: string | null;
  supersedeAt: Date | null;
  /** The key stayed on the device (issued from a CSR): renewing it takes a new CSR. */
  keyFromCsr: boolean;
}

export function deviceView(c: CertRecord, now: Date): DeviceView {
  const status =
    c.status === 'revoked' ? 'revoked' : c.notAfter.getTime() <= now.getTime() ? 'expired' : 'valid';
  return {
    id: c.serial,
    serial: c.serial,
    name: c.deviceName,
    commonName: c.commonName,
    owner: c.ownerName,
    kind: c.kind,
    keyType: c.keyType,
    createdAt: c.createdAt,
    notAfter: c.notAfter,
    status,
    revokedAt: c.revokedAt,
    revocationReason: c.revocationReason,
    lastSeenAt: c.lastSeenAt,
    renewedBy: c.status === 'valid' ? c.supersededBy : null,
    supersedeAt: c.status === 'valid' ? c.supersedeAt : null,
    keyFromCsr: c.keyFromCsr,
  };
}

export function userView(u: User): {
  id: number;
  name: string;
  role: string;
  disabled: boolean;
  createdAt: Date;
} {
  return { id: u.id, name: u.name, role: u.role, disabled: u.disabled, createdAt: u.createdAt };
}

export interface IssuedDevice {
  device: DeviceView;
  profile: string;
  filename: string;
}

/**
 * The operations behind both the pages and the JSON API, so that the two always have the same
 * powers and the same checks (ownership, validation, audit).
 */
export class WebActions {
  constructor(
    private readonly ctx: AppContext,
    private readonly sessions: SessionManager,
    private readonly throttle: LoginThrottle,
    private readonly now: () => Date,
    private readonly gate?: SharedLoginGate,
  ) {}

  /**
   * Reserves a sign-in attempt on this process's throttle, then on the replicas' shared one (when the
   * store is shared); a refusal by the shared one releases the local reservation uncounted.
   */
  private async beginAttempt(
    name: string,
    ip: string,
  ): Promise<{ fail(): Promise<void>; succeed(): Promise<void> }> {
    const account = name.toLowerCase();
    const local = this.throttle.begin(account, ip);
    let shared: SharedAttempt | undefined;
    try {
      shared = await this.gate?.begin(account, ip);
    } catch (err) {
      local.cancel();
      throw err;
    }
    return {
      fail: async () => {
        local.fail();
        await shared?.fail();
      },
      succeed: async () => {
        local.succeed();
        // the sign-in itself is good: a database hiccup while freeing a slot must not undo it
        await shared
          ?.succeed()
          .catch((err: unknown) => log.warn({ err }, 'shared sign-in counter not updated'));
      },
    };
  }

  /**
   * Checks the password (after the throttle) and opens a fresh session. Every failure gives the same
   * message, whether the name is unknown, the password wrong or the account disabled.
   */
  async login(name: string, password: string, ip: string): Promise<{ user: User; session: WebSession }> {
    const user = await this.checkPassword(name, password, ip);
    const session = await this.sessions.create(user.id);
    await this.ctx.store.appendAudit({
      actor: user.name,
      action: 'login',
      target: user.name,
      result: 'ok',
      details: { ip },
    });
    return { user, session };
  }

  /**
   * The password check behind sign-in and the OpenVPN Connect import (`/rest/Get*login`): counted by the
   * sign-in throttle before the hash is computed, audited when it fails, and the same 401 whatever the
   * reason (unknown name, wrong password, disabled, or a password sign-in `auth.local` does not allow).
   */
  async checkPassword(name: string, password: string, ip: string, via = 'login'): Promise<User> {
    // Reserved before the password is hashed: parallel guesses cannot all slip past the check.
    const attempt = await this.beginAttempt(name, ip);
    let user: User | undefined;
    try {
      const verified = await this.ctx.users.verifyPassword(name, password);
      // auth.local: a right password of someone who must use single sign-on counts as a failure
      user = verified && passwordSignInAllowed(this.ctx.config, verified) ? verified : undefined;
    } catch (err) {
      await attempt.fail();
      throw err;
    }
    if (!user || user.disabled) {
      await attempt.fail();
      await this.ctx.store.appendAudit({
        actor: 'anonymous',
        action: `${via}.failed`,
        target: name.slice(0, 64),
        result: 'error',
        details: { ip },
      });
      throw new Unauthorized('invalid user name or password' + passwordSignInHint(this.ctx.config));
    }
    await attempt.succeed();
    return user;
  }

  /** A credential found wrong without a password hash (an API token): throttled, audited, 401. */
  async refuseCredential(name: string, ip: string, via: string): Promise<never> {
    await (await this.beginAttempt(name, ip)).fail();
    await this.ctx.store.appendAudit({
      actor: 'anonymous',
      action: `${via}.failed`,
      target: name.slice(0, 64),
      result: 'error',
      details: { ip },
    });
    throw new Unauthorized('invalid user name, password or token');
  }

  /**
   * Whether `name` is an enabled account that cannot sign in with a password here (single sign-on
   * only). Counted by the throttle like a sign-in attempt, so it cannot be used to list accounts fast.
   */
  async isSingleSignOnOnly(name: string, ip: string): Promise<boolean> {
    const user = await this.ctx.store.getUserByName(name);
    if (!user || user.disabled || this.ctx.config.auth.oidc === undefined) return false;
    if (user.passwordHash !== null && passwordSignInAllowed(this.ctx.config, user)) return false;
    await (await this.beginAttempt(name, ip)).fail();
    return true;
  }

  async logout(user: User, session: WebSession | undefined): Promise<void> {
    if (session) await this.sessions.destroy(session.id);
    await this.ctx.store.appendAudit({
      actor: user.name,
      action: 'logout',
      target: user.name,
      result: 'ok',
      details: {},
    });
  }

  /** Routes, DNS and endpoints as clients get them: configured, else discovered. */
  async network(): Promise<EffectiveNetwork> {
    return await effectiveNetwork(this.ctx.config, this.ctx.store);
  }

  async myDevices(user: User): Promise<DeviceView[]> {
    const now = this.now();
    return (
      await this.ctx.store.listCerts({
        ownerId: user.id,
        kind: 'client',
        sort: 'createdAt',
        order: 'desc',
        limit: 1000,
      })
    ).items.map((c) => deviceView(c, now));
  }

  /** The certificate with this serial (as people write it), or undefined. */
  private async certBySerial(text: string): Promise<CertRecord | undefined> {
    const serial = parseSerial(text);
    return serial === undefined ? undefined : await this.ctx.store.getCert(serial);
  }

  /** The user's own certificate, or 404: someone else's id looks exactly like an unknown one. */
  async ownDevice(user: User, id: string): Promise<CertRecord> {
    const cert = await this.certBySerial(id);
    if (!cert || cert.ownerId !== user.id || cert.kind !== 'client') throw new NotFound('device not found');
    return cert;
  }

  /** Issues `<user>.<device>`; the key is generated for this answer only (or stays on the device with a CSR). */
  async createDevice(
    user: User,
    input: { name: string; keyType?: string; csr?: string },
  ): Promise<IssuedDevice> {
    const commonName = `${user.name}.${validateDeviceName('name', input.name)}`;
    try {
      validateName('name', commonName);
    } catch {
      throw new BadRequest(`name is too long: "${commonName}" must be at most 64 characters`, 'name');
    }
    const { cert, profile } = await this.ctx.devices.issue({
      actor: user.name,
      owner: user.name,
      commonName,
      deviceName: input.name,
      kind: 'client',
      selfService: true,
      ...(input.keyType ? { keyType: input.keyType as never } : {}),
      ...(input.csr ? { csrPem: input.csr } : {}),
    });
    return { device: deviceView(cert, this.now()), profile, filename: `${cert.commonName}.ovpn` };
  }

  async revokeMyDevice(
    user: User,
    id: string,
    reason: RevocationReason = 'cessationOfOperation',
  ): Promise<DeviceView> {
    const cert = await this.ownDevice(user, id);
    const { cert: revoked } = await this.ctx.revocation.revoke({
      actor: user.name,
      serialOrName: cert.serial,
      reason,
    });
    return deviceView(revoked, this.now());
  }

  async revokeCert(actor: User, serial: string, reason: RevocationReason): Promise<DeviceView> {
    const cert = await this.certBySerial(serial);
    if (!cert) throw new NotFound('certificate not found');
    const { cert: revoked } = await this.ctx.revocation.revoke({
      actor: actor.name,
      serialOrName: cert.serial,
      reason,
    });
    return deviceView(revoked, this.now());
  }

  /** Days before expiry that lists flag a certificate (`vpn.expiryWarningDays`). */
  get expiryWarningDays(): number {
    return this.ctx.config.vpn.expiryWarningDays;
  }

  async getCert(serial: string): Promise<DeviceView> {
    const cert = await this.certBySerial(serial);
    if (!cert) throw new NotFound('certificate not found');
    return deviceView(cert, this.now());
  }

  async listCerts(q: {
    q?: string;
    status?: string;
    expiring?: string;
    sort: 'commonName' | 'owner' | 'notAfter' | 'createdAt' | 'status';
    order: 'asc' | 'desc';
    page: number;
    perPage: number;
    cursor?: string;
  }): Promise<{
    total: number;
    items: DeviceView[];
    page: number;
    pages: number;
    perPage: number;
    nextCursor?: string;
  }> {
    const { total, items, nextCursor } = await this.certWindow({
      ...q,
      limit: q.perPage,
      // a cursor (next links) reads on from the index; a page number alone skips rows
      ...(q.cursor ? { after: q.cursor } : { offset: (q.page - 1) * q.perPage }),
    });
    return {
      total,
      items,
      ...(nextCursor ? { nextCursor } : {}),
      page: q.page,
      pages: Math.max(1, Math.ceil(total / q.perPage)),
      perPage: q.perPage,
    };
  }

  /**
   * `limit` certificates of those matching, from `offset` or after the store's keyset cursor `after`,
   * how many match, and the cursor of the next window (absent on the last).
   */
  async certWindow(q: {
    q?: string;
    status?: string;
    expiring?: string;
    sort: 'commonName' | 'owner' | 'notAfter' | 'createdAt' | 'status';
    order: 'asc' | 'desc';
    limit: number;
    offset?: number;
    after?: string;
  }): Promise<{ total: number; items: DeviceView[]; nextCursor?: string }> {
    const now = this.now();
    const { total, items, nextCursor } = await this.ctx.store.listCerts({
      ...(q.q ? { search: q.q } : {}),
      ...(q.status === 'valid' || q.status === 'revoked' ? { status: q.status } : {}),
      ...(q.expiring === '30' || q.expiring === 'on'
        ? { expiringWithinDays: this.expiryWarningDays, now }
        : {}),
      sort: q.sort,
      order: q.order,
      limit: q.limit,
      ...(q.after ? { after: q.after } : { offset: q.offset ?? 0 }),
    });
    return {
      total,
      items: items.map((c) => deviceView(c, now)),
      ...(nextCursor ? { nextCursor } : {}),
    };
  }

  async createUser(
    actor: User,
    input: { name: string; role: 'admin' | 'user'; password: string },
  ): Promise<User> {
    return this.ctx.users.create({
      actor: actor.name,
      name: input.name,
      role: input.role,
      password: input.password,
    });
  }

  /** Role change and/or disable; disabling signs the user out everywhere and revokes their certificates. */
  async updateUser(
    actor: User,
    name: string,
    patch: { role?: 'admin' | 'user'; disabled?: boolean },
  ): Promise<User> {
    const target = await this.ctx.store.getUserByName(name);
    if (!target) throw new NotFound('user not found');
    if (target.id === actor.id)
      throw new BadRequest(
        'you cannot change your own role or disable yourself',
        patch.role ? 'role' : 'disabled',
      );
    let user = target;
    if (patch.role) user = await this.ctx.users.setRole({ actor: actor.name, name, role: patch.role });
    if (patch.disabled === true && !user.disabled) {
      user = (await this.ctx.users.disable({ actor: actor.name, name })).user;
      await this.sessions.destroyAllOf(user.id);
    } else if (patch.disabled === false && user.disabled) {
      // Enabling gives the account back, not its certificates: they stay revoked.
      user = await this.ctx.users.enable({ actor: actor.name, name });
    }
    return user;
  }
}
