import assert from 'node:assert/strict';
import { DEFAULT_THROTTLE, LoginThrottle, type Attempt } from '../../../src/web/login-throttle.js';

describe('LoginThrottle', () => {
  let t: number;
  let throttle: LoginThrottle;
  beforeEach(() => {
    t = Date.UTC(2026, 10, 30);
    throttle = new LoginThrottle(DEFAULT_THROTTLE, () => t);
  });
  const refused = (account: string, ip: string): boolean => {
    try {
      throttle.begin(account, ip).fail();
      return false;
    } catch (err) {
      assert.equal((err as { status: number }).status, 429);
      return true;
    }
  };

  it('reserves attempts as they begin: the 6th concurrent attempt for an account is refused', () => {
    const held: Attempt[] = [];
    for (let i = 0; i < 5; i++) held.push(throttle.begin('alice', `10.0.0.${i}`));
    assert.throws(() => throttle.begin('alice', '10.0.0.9'), /too many sign-in attempts/);
    // A success in the middle of the burst frees nothing for the account.
    held[0]!.succeed();
    assert.throws(() => throttle.begin('alice', '10.0.0.9'), /too many sign-in attempts/);
    held[1]!.fail();
    assert.throws(() => throttle.begin('alice', '10.0.0.9'), /too many sign-in attempts/);
  });

  it('an address gets 20 attempts across accounts', () => {
    for (let i = 0; i < 20; i++) throttle.begin(`user${i}`, '192.0.2.1');
    assert.throws(() => throttle.begin('other', '192.0.2.1'), /too many/);
    assert.doesNotThrow(() => throttle.begin('other', '192.0.2.2'));
  });

  it('past the budget the delay doubles with every failure, at most the window, and the window resets it', () => {
    for (let i = 0; i < 5; i++) assert.equal(refused('bob', '198.51.100.1'), false);
    const waits: number[] = [];
    for (let k = 0; k < 8; k++) {
      let waited = 0;
      while (refused('bob', '198.51.100.1')) {
        t += 1000;
        waited += 1000;
      }
      waits.push(waited);
      if (t > Date.UTC(2026, 10, 30) + DEFAULT_THROTTLE.windowMs) break;
    }
    assert.deepEqual(waits.slice(0, 3), [30_000, 60_000, 120_000]);
    assert.ok(Math.max(...waits) <= DEFAULT_THROTTLE.windowMs);
    // A quiet window later the account has its full budget again.
    t += 2 * DEFAULT_THROTTLE.windowMs;
    for (let i = 0; i < 5; i++) assert.equal(refused('bob', '198.51.100.1'), false);
    assert.equal(refused('bob', '198.51.100.1'), true);
  });

  it('an address the account signed in from keeps its own budget', () => {
    throttle.begin('admin', '198.51.100.7').succeed();
    t += 86_400_000; // the next day: the address is still known, the window has passed
    for (let i = 0; i < 5; i++) throttle.begin('admin', '203.0.113.9').fail();
    assert.throws(() => throttle.begin('admin', '203.0.113.9'), /too many/);
    assert.throws(() => throttle.begin('admin', '192.0.2.44'), /too many/);
    assert.doesNotThrow(() => throttle.begin('admin', '198.51.100.7').succeed());
  });

  it('ending an attempt twice counts it once', () => {
    const a = throttle.begin('carol', '192.0.2.9');
    a.fail();
    a.fail();
    for (let i = 0; i < 4; i++) throttle.begin('carol', '192.0.2.9').fail();
    assert.throws(() => throttle.begin('carol', '192.0.2.9'), /too many/);
  });
});
