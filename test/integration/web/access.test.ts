import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { AccessBundle } from '../../../src/access/types.js';
import { LocalAccessPublisher } from '../../../src/openvpn/access-publisher.js';
import { csrfFromHtml, signIn, webFixture, type Client, type WebFixture } from './helpers.js';

const RULES_YAML = `rules:
  - name: team-a
    subjects:
      - { kind: group, name: a }
    destinations:
      - { kind: namespace, names: [team-a] }
  - name: web
    subjects:
      - { kind: user, name: alice }
    destinations:
      - { kind: service, namespace: team-b, name: web }
    protocol: tcp
    ports: [{ from: 443, to: 443 }]
`;

describe('web: access rules and groups over HTTP', function () {
  this.timeout(60_000);
  let f: WebFixture;
  let admin: Client;
  let alice: Client;
  const accessFile = () =>
    JSON.parse(readFileSync(join(f.dir, 'server', 'access.json'), 'utf8')) as AccessBundle;

  before(async () => {
    f = await webFixture();
    f.ctx.access.addPublisher(new LocalAccessPublisher(join(f.dir, 'server')));
    admin = await signIn(f.app, 'admin');
    alice = await signIn(f.app, 'alice');
    await f.ctx.devices.issue({
      actor: 'test',
      owner: 'bob',
      commonName: 'bob.laptop',
      deviceName: 'laptop',
    });
  });
  after(() => f.close());

  it('groups: create, add a member, list, remove the member, delete; each audited', async () => {
    await admin.agent.post('/api/v1/groups').set('X-CSRF-Token', admin.csrf).send({ name: 'a' }).expect(201);
    const added = await admin.agent
      .post('/api/v1/groups/a/members')
      .set('X-CSRF-Token', admin.csrf)
      .send({ user: 'bob' })
      .expect(201);
    assert.deepEqual(added.body.group.members, ['bob']);
    await admin.agent
      .post('/api/v1/groups/a/members')
      .set('X-CSRF-Token', admin.csrf)
      .send({ user: 'bob' })
      .expect(409);
    await admin.agent
      .post('/api/v1/groups/a/members')
      .set('X-CSRF-Token', admin.csrf)
      .send({ user: 'nobody' })
      .expect(404);
    const bad = await admin.agent
      .post('/api/v1/groups')
      .set('X-CSRF-Token', admin.csrf)
      .send({ name: 'Bad Name' })
      .expect(400);
    assert.equal(bad.body.error.field, 'name');
    const list = await admin.agent.get('/api/v1/groups').expect(200);
    assert.deepEqual(
      list.body.items.map((g: { name: string }) => g.name),
      ['a'],
    );
    await admin.agent
      .post('/api/v1/groups')
      .set('X-CSRF-Token', admin.csrf)
      .send({ name: 'tmp' })
      .expect(201);
    await admin.agent.delete('/api/v1/groups/tmp').set('X-CSRF-Token', admin.csrf).expect(204);
    await alice.agent.get('/api/v1/groups').expect(403);
    await admin.agent.post('/api/v1/groups').send({ name: 'nocsrf' }).expect(403);
    const actions = (await f.ctx.store.listAudit({ limit: 50 })).map((e) => e.action);
    for (const a of ['group.create', 'group.member.add', 'group.delete']) assert.ok(actions.includes(a), a);
  });

  it('PUT /api/v1/access (YAML): dry run changes nothing, apply publishes, GET exports what PUT accepts', async () => {
    const v0 = (await admin.agent.get('/api/v1/access').expect(200)).body.version as number;
    const dry = await admin.agent
      .put('/api/v1/access?dryRun=true')
      .set('X-CSRF-Token', admin.csrf)
      .type('application/yaml')
      .send(RULES_YAML)
      .expect(200);
    assert.deepEqual(dry.body.create, ['team-a', 'web']);
    assert.equal(dry.body.dryRun, true);
    assert.equal(dry.body.version, v0);
    const real = await admin.agent
      .put('/api/v1/access')
      .set('X-CSRF-Token', admin.csrf)
      .type('application/yaml')
      .send(RULES_YAML)
      .expect(200);
    assert.ok(real.body.version > v0);
    const published = accessFile();
    assert.equal(published.version, real.body.version);
    const bob = (await f.ctx.addresses.get('bob.laptop'))!.address;
    assert.deepEqual(published.rules.find((r) => r.name === 'team-a')!.clients, [bob]);
    const yaml = await admin.agent.get('/api/v1/access?format=yaml').expect(200);
    assert.match(yaml.headers['content-type']!, /yaml/);
    const again = await admin.agent
      .put('/api/v1/access?dryRun=true')
      .set('X-CSRF-Token', admin.csrf)
      .type('application/yaml')
      .send(yaml.text)
      .expect(200);
    assert.deepEqual(again.body.unchanged, ['team-a', 'web']);
    const json = await admin.agent.get('/api/v1/access').expect(200);
    await admin.agent
      .put('/api/v1/access?dryRun=1')
      .set('X-CSRF-Token', admin.csrf)
      .send({ rules: json.body.rules })
      .expect(200);
  });

  it('400 names the field and changes nothing; non-admins may not apply', async () => {
    const before = (await admin.agent.get('/api/v1/access?format=yaml')).text;
    const res = await admin.agent
      .put('/api/v1/access')
      .set('X-CSRF-Token', admin.csrf)
      .send({
        rules: [
          {
            name: 'x',
            subjects: [{ kind: 'everyone' }],
            destinations: [{ kind: 'cidr', cidr: '10.0.0.1/8' }],
          },
        ],
      })
      .expect(400);
    assert.equal(res.body.error.field, 'rules[0].destinations[0].cidr');
    assert.equal((await admin.agent.get('/api/v1/access?format=yaml')).text, before);
    await alice.agent.put('/api/v1/access').set('X-CSRF-Token', alice.csrf).send({ rules: [] }).expect(403);
  });

  it('check, who, mine: answers name the rule; developers may ask about themselves only', async () => {
    const c = await admin.agent
      .get('/api/v1/access/check')
      .query({ user: 'bob', destination: 'ns/team-a' })
      .expect(200);
    assert.equal(c.body.decision, 'allow');
    assert.equal(c.body.rule, 'team-a');
    const d = await admin.agent
      .get('/api/v1/access/check')
      .query({ user: 'alice', destination: 'svc/team-b/web:80' })
      .expect(200);
    assert.equal(d.body.decision, 'deny');
    const bad = await admin.agent
      .get('/api/v1/access/check')
      .query({ user: 'bob', destination: 'nowhere' })
      .expect(400);
    assert.equal(bad.body.error.field, 'destination');
    const who = await admin.agent
      .get('/api/v1/access/who')
      .query({ destination: 'svc/team-b/web:443' })
      .expect(200);
    assert.deepEqual(
      who.body.reachers.map((r: { rule: string; users: string[] }) => [r.rule, r.users]),
      [['web', ['alice']]],
    );
    const mine = await alice.agent.get('/api/v1/access/mine').expect(200);
    assert.deepEqual(
      mine.body.items.map((r: { rule: string }) => r.rule),
      ['web'],
    );
    await alice.agent
      .get('/api/v1/access/check')
      .query({ user: 'alice', destination: 'svc/team-b/web:443' })
      .expect(200);
    await alice.agent
      .get('/api/v1/access/check')
      .query({ user: 'bob', destination: 'ns/team-a' })
      .expect(403);
  });

  it('the pages: Access shows the field-named error and keeps the text; My access lists the rules; group forms work', async () => {
    const page = await admin.agent.get('/admin/access').expect(200);
    assert.match(page.text, /team-a/);
    const csrf = csrfFromHtml(page.text);
    const bad = await admin.agent
      .post('/admin/access')
      .type('form')
      .send({ _csrf: csrf, rules: 'rules:\n  - name: Bad\n    subjects: []\n    destinations: []\n' })
      .expect(400);
    assert.match(bad.text, /id="form-error"[^>]*>rules\[0\]\.name/);
    assert.match(bad.text, /name: Bad/);
    const dry = await admin.agent
      .post('/admin/access')
      .type('form')
      .send({ _csrf: csrf, rules: RULES_YAML.replace('team-b', 'team-c'), dryRun: 'true' })
      .expect(200);
    assert.match(dry.text, /id="dry-run"/);
    await admin.agent.post('/admin/access').type('form').send({ _csrf: csrf, rules: RULES_YAML }).expect(303);
    await admin.agent.post('/admin/access').type('form').send({ rules: RULES_YAML }).expect(403);
    const ask = await admin.agent
      .get('/admin/access')
      .query({ user: 'bob', destination: 'ns/team-a' })
      .expect(200);
    assert.match(ask.text, /id="check-answer"[\s\S]*allow[\s\S]*team-a/);
    const who = await admin.agent.get('/admin/access').query({ destination: 'ns/team-a' }).expect(200);
    assert.match(who.text, /id="who-answer"[\s\S]*rule <strong>team-a<\/strong>[\s\S]*bob/);
    const mine = await alice.agent.get('/access').expect(200);
    assert.match(mine.text, /data-rule="web"/);
    const users = await admin.agent.get('/admin/users').expect(200);
    const ucsrf = csrfFromHtml(users.text);
    await admin.agent.post('/admin/groups').type('form').send({ _csrf: ucsrf, name: 'b' }).expect(303);
    await admin.agent
      .post('/admin/groups/members')
      .type('form')
      .send({ _csrf: ucsrf, group: 'b', user: 'alice' })
      .expect(303);
    assert.deepEqual((await f.ctx.groups.get('b')).members, ['alice']);
    await admin.agent
      .post('/admin/groups/b/members/alice/remove')
      .type('form')
      .send({ _csrf: ucsrf })
      .expect(303);
    assert.deepEqual((await f.ctx.groups.get('b')).members, []);
    await alice.agent.get('/admin/access').expect(403);
  });

  it('/metrics carries the rule count and the bundle version (bounded: no per-user labels)', async () => {
    const registry = f.app.locals.metricsRegistry as Registry;
    const text = await registry.metrics();
    assert.match(text, /^podgate_access_rules 2$/m);
    assert.match(text, new RegExp(`^podgate_access_bundle_version ${await f.ctx.access.version()}$`, 'm'));
    assert.match(text, /^podgate_access_enforced 1$/m);
  });
});
