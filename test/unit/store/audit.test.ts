import assert from 'node:assert/strict';
import { expectAppError, tempStore, type TempStore } from './temp-store.js';

describe('store: audit log', () => {
  let t: TempStore;
  beforeEach(() => {
    t = tempStore();
  });
  afterEach(() => t.cleanup());

  it('appends entries and lists them newest first with details intact', async () => {
    const at = new Date('2026-05-01T10:00:00.000Z');
    const a = await t.store.appendAudit({
      actor: 'admin',
      action: 'cert.revoke',
      target: 'AB01',
      result: 'ok',
      details: { reason: 'keyCompromise', n: 1 },
      time: at,
    });
    const b = await t.store.appendAudit({
      actor: 'agent',
      action: 'revocation.effective',
      target: 'AB01',
      result: 'ok',
      details: {},
    });
    assert.deepEqual(a.time, at);
    assert.deepEqual(a.details, { reason: 'keyCompromise', n: 1 });
    assert.ok(b.id > a.id);
    assert.deepEqual(await t.store.listAudit(), [b, a]);
  });

  it('filters by action and target, pages with limit and offset', async () => {
    for (let i = 0; i < 5; i++) {
      await t.store.appendAudit({
        actor: 'admin',
        action: i % 2 ? 'user.add' : 'cert.issue',
        target: `t${i}`,
        result: 'ok',
        details: {},
      });
    }
    assert.deepEqual(
      (await t.store.listAudit({ action: 'cert.issue' })).map((e) => e.target),
      ['t4', 't2', 't0'],
    );
    assert.deepEqual(
      (await t.store.listAudit({ target: 't3' })).map((e) => e.action),
      ['user.add'],
    );
    assert.deepEqual(
      (await t.store.listAudit({ limit: 2, offset: 1 })).map((e) => e.target),
      ['t3', 't2'],
    );
  });

  it('keyset pages: beforeId lists older entries only; countAudit counts what the filters match', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        (
          await t.store.appendAudit({
            actor: 'admin',
            action: i % 2 ? 'user.add' : 'cert.issue',
            target: `t${i}`,
            result: 'ok',
            details: {},
          })
        ).id,
      );
    }
    assert.deepEqual(
      (await t.store.listAudit({ beforeId: ids[3], limit: 2 })).map((e) => e.target),
      ['t2', 't1'],
    );
    assert.deepEqual(
      (await t.store.listAudit({ beforeId: ids[3], action: 'cert.issue' })).map((e) => e.target),
      ['t2', 't0'],
    );
    assert.equal(await t.store.countAudit(), 5);
    assert.equal(await t.store.countAudit({ action: 'cert.issue' }), 3);
    assert.equal(await t.store.countAudit({ target: 't3' }), 1);
    await expectAppError(() => t.store.listAudit({ beforeId: 0 }), 'BadRequest', 'beforeId');
  });

  it('400 unknown result or non-object details names the field, nothing appended', async () => {
    await expectAppError(
      () =>
        t.store.appendAudit({ actor: 'a', action: 'x', target: '', result: 'maybe' as 'ok', details: {} }),
      'BadRequest',
      'result',
    );
    await expectAppError(
      () =>
        t.store.appendAudit({
          actor: 'a',
          action: 'x',
          target: '',
          result: 'ok',
          details: [] as unknown as Record<string, unknown>,
        }),
      'BadRequest',
      'details',
    );
    assert.equal((await t.store.listAudit()).length, 0);
  });

  it('the database refuses UPDATE and DELETE of audit rows (trigger), even on a raw connection', async () => {
    await t.store.appendAudit({
      actor: 'admin',
      action: 'cert.revoke',
      target: 'AB01',
      result: 'ok',
      details: {},
    });
    const raw = t.raw();
    assert.throws(() => raw.prepare("UPDATE audit_log SET actor = 'mallory'").run(), /append-only/);
    assert.throws(() => raw.prepare('DELETE FROM audit_log').run(), /append-only/);
    const rows = raw.prepare('SELECT actor FROM audit_log').all();
    assert.deepEqual(rows, [{ actor: 'admin' }]);
  });
});
