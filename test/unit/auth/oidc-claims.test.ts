import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config/load.js';
import type { OidcConfig } from '../../../src/config/schema.js';
import {
  decideAccess,
  readGroups,
  readProfile,
  toValidName,
  uniqueName,
} from '../../../src/auth/oidc-claims.js';
import { NAME_PATTERN } from '../../../src/lib/names.js';

function settings(extra: Record<string, unknown> = {}): OidcConfig {
  return loadConfig({
    env: {},
    overrides: {
      'auth.oidc': {
        issuer: 'https://id.example.test',
        clientId: 'podgate',
        redirectUrl: 'https://vpn.example.test/auth/oidc/callback',
        ...extra,
      },
    },
  }).auth.oidc!;
}

describe('auth: reading OpenID claims', () => {
  it('makes any claim a valid name under the name rule', () => {
    const cases: [string, string][] = [
      ['Dev.Eloper', 'dev.eloper'],
      ['alice@corp.example', 'alice-corp.example'],
      ['  Zoë Ångström ', 'zoe-angstrom'],
      ['..hidden', 'hidden'],
      ['---', 'user'],
      ['.', 'user'],
      ['名前', 'user'],
      ['x'.repeat(100), 'x'.repeat(64)],
    ];
    for (const [raw, want] of cases) {
      assert.equal(toValidName(raw), want, raw);
      assert.match(toValidName(raw), NAME_PATTERN);
    }
  });

  it('finds the first free name with a suffix that keeps within 64 characters', async () => {
    const taken = new Set(['alice', 'alice-2', 'y'.repeat(64)]);
    assert.equal(await uniqueName('bob', async (n) => taken.has(n)), 'bob');
    assert.equal(await uniqueName('alice', async (n) => taken.has(n)), 'alice-3');
    const long = await uniqueName('y'.repeat(64), async (n) => taken.has(n));
    assert.equal(long, 'y'.repeat(62) + '-2');
    assert.match(long, NAME_PATTERN);
  });

  it('groups: absent is "none" without rules, a refusal with rules; a non-list is always refused', () => {
    assert.deepEqual(readGroups({}, settings()), []);
    assert.throws(() => readGroups({}, settings({ allowedGroups: ['vpn'] })), /sent no "groups" claim/);
    assert.throws(
      () => readGroups({ groups: 'vpn' }, settings()),
      /not a list of group names \(got string\)/,
    );
    assert.throws(() => readGroups({ groups: ['vpn', 3] }, settings()), /non-text items/);
    assert.deepEqual(readGroups({ roles: ['b', 'a', 'b'] }, settings({ groupsClaim: 'roles' })), ['a', 'b']);
  });

  it('groups in the leaver check: absent with rules is "in no group" (denied), a non-list is still refused', () => {
    const rules = settings({ allowedGroups: ['vpn'] });
    const groups = readGroups({}, rules, { missing: 'no-groups' });
    assert.deepEqual(groups, []);
    assert.equal(decideAccess(groups, rules).allowed, false);
    assert.throws(() => readGroups({ groups: 'vpn' }, rules, { missing: 'no-groups' }), /not a list/);
  });

  it('uses the e-mail before "@" when the user-name claim is missing; refuses a token with neither', () => {
    assert.equal(readProfile({ sub: 's', email: 'Carol.X@example.test' }, settings()).name, 'carol.x');
    assert.throws(
      () => readProfile({ sub: 's' }, settings()),
      /neither a "preferred_username" nor an "email"/,
    );
    assert.throws(() => readProfile({ preferred_username: 'x' }, settings()), /no subject/);
  });

  it('admin groups also admit; empty admin groups leave the role alone', () => {
    const s = settings({ allowedGroups: ['vpn'], adminGroups: ['ops'] });
    assert.deepEqual(decideAccess(['ops'], s), { allowed: true, admin: true });
    assert.deepEqual(decideAccess(['vpn'], s), { allowed: true, admin: false });
    assert.deepEqual(decideAccess(['sales'], s), { allowed: false, admin: false });
    assert.deepEqual(decideAccess([], settings()), { allowed: true, admin: undefined });
  });
});
