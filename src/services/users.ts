import { BadRequest, NotFound } from '../lib/errors.js';
import { validateName } from '../lib/names.js';
import type { Role, Store, TxStore, User } from '../store/types.js';
import type { RevocationService } from './revocation.js';

/** argon2id with the OWASP password-storage minimum: m=19456 KiB, t=2, p=1 (about 10 ms per hash). */
const ARGON2_OPTIONS = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

/**
 * The native argon2 addon, loaded on the first hash or verify: commands that check no password
 * (`cert list`, `cert revoke`, `user list`) should not load it at start-up.
 */
async function argon2() {
  const native = await import('@node-rs/argon2');
  const options = { ...ARGON2_OPTIONS, algorithm: native.Algorithm.Argon2id };
  return {
    hash: (password: string) => native.hash(password, options),
    verify: (stored: string, password: string) => native.verify(stored, password),
  };
}
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

  /** `store`: a caller's transaction to create the user in (the first admin's). */
  async create(
    o: { actor: string; name: string; role: Role; password?: string },
    store: TxStore = this.deps.store,
  ): Promise<User> {
    const name = validateName('name', o.name);
    const role = validateRole(o.role);
    const passwordHash =
      o.password === undefined ? null : await (await argon2()).hash(validatePassword('password', o.password));
    return store.transaction(async (tx) => {
      const user = await tx.createUser({ name, role, passwordHash });
      await tx.appendAudit({
        actor: o.actor,
        action: 'user.create',
        target: name,
        result: 'ok',
        details: { role },
      });
      return user;
    });
  }

  list(): Promise<User[]> {
    return this.deps.store.listUsers();
  }

  async get(name: string): Promise<User> {
    const user = await this.deps.store.getUserByName(name);
    if (!user) throw new NotFound(`user '${name}' does not exist`);
    return user;
  }

  /** The user when the password is right and the account enabled; undefined otherwise (constant work). */
  async verifyPassword(name: string, password: string): Promise<User | undefined> {
    const user = typeof name === 'string' ? await this.deps.store.getUserByName(name) : undefined;
    if (!user || !user.passwordHash || user.disabled) {
      dummyHash ??= argon2().then((a) => a.hash('podgate-timing-equaliser'));
      await (await argon2()).verify(await dummyHash, String(password)).catch(() => false);
      return undefined;
    }
    const ok = await (await argon2()).verify(user.passwordHash, String(password)).catch(() => false);
    return ok ? user : undefined;
  }

  async setPassword(o: { actor: string; name: string; password: string }): Promise<User> {
    const user = await this.get(o.name);
    const passwordHash = await (await argon2()).hash(validatePassword('password', o.password));
    const { store } = this.deps;
    return store.transaction(async (tx) => {
      const updated = await tx.updateUser(user.id, { passwordHash });
      await tx.appendAudit({
        actor: o.actor,
        action: 'user.password',
        target: user.name,
        result: 'ok',
        details: {},
      });
      return updated;
    });
  }

  async setRole(o: { actor: string; name: string; role: Role }): Promise<User> {
    const user = await this.get(o.name);
    const role = validateRole(o.role);
    const { store } = this.deps;
    const updated = await store.transaction(async (tx) => {
      const u = await tx.updateUser(user.id, { role });
      await tx.appendAudit({
        actor: o.actor,
        action: 'user.role',
        target: user.name,
        result: 'ok',
        details: { role },
      });
      return u;
    });
    await this.deps.changed?.(); // admins are a group access rules name: answer once it is out
    return updated;
  }

  /**
   * Disables the account and revokes all its valid certificates, in one store transaction (the CRL is
   * signed in it too): a crash or a concurrent revoke can never leave a disabled user holding a valid
   * certificate, which the sign-in sync would then skip. An issue re-checks `disabled` inside its own
   * insert transaction, so every certificate is either revoked here or never recorded. The CRL is
   * published once the transaction has committed.
   */
  async disable(o: { actor: string; name: string }): Promise<{ user: User; revoked: string[] }> {
    const user = await this.get(o.name);
    const { store, revocation } = this.deps;
    await revocation.syncCas(); // the CRL signed inside the transaction needs the CAs in force
    const { updated, valid } = await store.transaction(async (tx) => {
      const u = await tx.updateUser(user.id, { disabled: true });
      const serials = await validOf(tx, user.id);
      if (serials.length > 0)
        await revocation.revokeInTransaction(o.actor, serials, 'affiliationChanged', tx);
      await tx.appendAudit({
        actor: o.actor,
        action: 'user.disable',
        target: user.name,
        result: 'ok',
        details: { revoked: serials.length },
      });
      return { updated: u, valid: serials };
    });
    if (valid.length > 0) await revocation.publish();
    return { user: updated, revoked: valid };
  }

  /**
   * Revokes the valid certificates disabled users still hold (a store written by an older podgate,
   * whose disable committed before it revoked, and crashed in between). `serve` and `server run` run it
   * at start; returns the serials revoked.
   */
  async revokeHeldByDisabled(actor: string): Promise<string[]> {
    const { store, revocation } = this.deps;
    await revocation.syncCas();
    const serials = await store.transaction(async (tx) => {
      const held: string[] = [];
      for (const u of await tx.listUsers()) if (u.disabled) held.push(...(await validOf(tx, u.id)));
      if (held.length > 0) await revocation.revokeInTransaction(actor, held, 'affiliationChanged', tx);
      return held;
    });
    if (serials.length > 0) await revocation.publish();
    return serials;
  }

  async enable(o: { actor: string; name: string }): Promise<User> {
    const user = await this.get(o.name);
    const { store } = this.deps;
    return store.transaction(async (tx) => {
      const u = await tx.updateUser(user.id, { disabled: false });
      await tx.appendAudit({
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

async function validOf(store: TxStore, userId: number): Promise<string[]> {
  return (await store.listCerts({ ownerId: userId, status: 'valid' })).items.map((c) => c.serial);
}
