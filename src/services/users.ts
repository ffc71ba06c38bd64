import { hash, verify, Algorithm } from '@node-rs/argon2';
import { BadRequest, NotFound } from '../lib/errors.js';
import { validateName } from '../lib/names.js';
import type { Role, Store, User } from '../store/types.js';
import type { RevocationService } from './revocation.js';

/** argon2id with the OWASP password-storage minimum: m=19456 KiB, t=2, p=1 (about 10 ms per hash). */
const ARGON2 = { algorithm: Algorithm.Argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
/** A real hash of a random string, so that an unknown user costs the same time as a wrong password. */
let dummyHash: Promise<string> | undefined;

// The one password rule (length, variety, not a well-known password) lives in password-policy.
import { validatePassword } from './password-policy.js';
export { MIN_PASSWORD_LENGTH, validatePassword } from './password-policy.js';

function validateRole(role: unknown): Role {
  if (role !== 'admin' && role !== 'user') throw new BadRequest('role must be "admin" or "user"', 'role');
  return role;
}

export interface UserServiceDeps {
  store: Store;
  revocation: RevocationService;
  /** Called after a change that may alter the access bundle (role: the built-in admins group). */
  changed?: () => Promise<void>;
}

/** People and their passwords; disabling someone also revokes every certificate they own. */
export class UserService {
  constructor(private readonly deps: UserServiceDeps) {}

  async create(o: { actor: string; name: string; role: Role; password?: string }): Promise<User> {
    const name = validateName('name', o.name);
    const role = validateRole(o.role);
    const passwordHash =
      o.password === undefined ? null : await hash(validatePassword('password', o.password), ARGON2);
    const { store } = this.deps;
    return store.transaction(() => {
      const user = store.createUser({ name, role, passwordHash });
      store.appendAudit({
        actor: o.actor,
        action: 'user.create',
        target: name,
        result: 'ok',
        details: { role },
      });
      return user;
    });
  }

  list(): User[] {
    return this.deps.store.listUsers();
  }

  get(name: string): User {
    const user = this.deps.store.getUserByName(name);
    if (!user) throw new NotFound(`user '${name}' does not exist`);
    return user;
  }

  /** The user when the password is right and the account enabled; undefined otherwise (constant work). */
  async verifyPassword(name: string, password: string): Promise<User | undefined> {
    const user = typeof name === 'string' ? this.deps.store.getUserByName(name) : undefined;
    if (!user || !user.passwordHash || user.disabled) {
      dummyHash ??= hash('podgate-timing-equaliser', ARGON2);
      await verify(await dummyHash, String(password)).catch(() => false);
      return undefined;
    }
    const ok = await verify(user.passwordHash, String(password)).catch(() => false);
    return ok ? user : undefined;
  }

  async setPassword(o: { actor: string; name: string; password: string }): Promise<User> {
    const user = this.get(o.name);
    const passwordHash = await hash(validatePassword('password', o.password), ARGON2);
    const { store } = this.deps;
    return store.transaction(() => {
      const updated = store.updateUser(user.id, { passwordHash });
      store.appendAudit({
        actor: o.actor,
        action: 'user.password',
        target: user.name,
        result: 'ok',
        details: {},
      });
      return updated;
    });
  }

  setRole(o: { actor: string; name: string; role: Role }): User {
    const user = this.get(o.name);
    const role = validateRole(o.role);
    const { store } = this.deps;
    const updated = store.transaction(() => {
      const u = store.updateUser(user.id, { role });
      store.appendAudit({
        actor: o.actor,
        action: 'user.role',
        target: user.name,
        result: 'ok',
        details: { role },
      });
      return u;
    });
    void this.deps.changed?.();
    return updated;
  }

  /**
   * Disables the account and revokes all its valid certificates with one CRL update. The valid list is
   * read in the same write transaction that sets `disabled`, and an issue re-checks `disabled` inside
   * its own insert transaction, so every certificate is either in this list or never recorded; when
   * this returns the user holds no valid certificate, whatever was in flight.
   */
  async disable(o: { actor: string; name: string }): Promise<{ user: User; revoked: string[] }> {
    const user = this.get(o.name);
    const { store, revocation } = this.deps;
    const validOf = () => store.listCerts({ ownerId: user.id, status: 'valid' }).items.map((c) => c.serial);
    const { updated, valid } = store.transaction(() => {
      const u = store.updateUser(user.id, { disabled: true });
      const serials = validOf();
      store.appendAudit({
        actor: o.actor,
        action: 'user.disable',
        target: user.name,
        result: 'ok',
        details: { revoked: serials.length },
      });
      return { updated: u, valid: serials };
    });
    if (valid.length > 0)
      await revocation.revokeMany({ actor: o.actor, serials: valid, reason: 'affiliationChanged' });
    // Defence in depth (another podgate version writing the same store): revoke anything that still shows.
    const late = validOf();
    if (late.length > 0)
      await revocation.revokeMany({ actor: o.actor, serials: late, reason: 'affiliationChanged' });
    return { user: updated, revoked: [...valid, ...late] };
  }

  enable(o: { actor: string; name: string }): User {
    const user = this.get(o.name);
    const { store } = this.deps;
    return store.transaction(() => {
      const u = store.updateUser(user.id, { disabled: false });
      store.appendAudit({
        actor: o.actor,
        action: 'user.enable',
        target: user.name,
        result: 'ok',
        details: {},
      });
      return u;
    });
  }
}
