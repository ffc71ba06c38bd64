/**
 * The one kubeconfig reader (src/cluster/kubeconfig.ts) on kubeconfig fixtures: what it resolves itself
 * (the Secret writer and the full client both use it), what it leaves to the full client (it must never
 * guess at a way of authenticating it does not implement), and bad input as a 400 naming the field.
 * Also the full client's KubeConfig built from a resolved target (kube-client.ts kubeConfigFor).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeConfigFor } from '../../../src/cluster/kube-client.js';
import { resolveKube, type KubeResolution } from '../../../src/cluster/kubeconfig.js';
import { AppError } from '../../../src/lib/errors.js';

describe('cluster/kubeconfig: resolveKube', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-kubeconfig-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = (name: string, cluster: string, user: string, extra: string[] = []): string => {
    const file = join(dir, name);
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{ name: c, cluster: ${cluster} }]`,
        `users: [{ name: u, user: ${user} }]`,
        'contexts: [{ name: x, context: { cluster: c, user: u } }, { name: y, context: { cluster: c } }]',
        ...(extra.length ? extra : ['current-context: x']),
        '',
      ].join('\n'),
    );
    return file;
  };
  const HOME = { HOME: dir }; // no ~/.kube/config there
  const target = (r: KubeResolution) => {
    assert.ok(r.target, `expected a target, got: ${r.full?.reason}`);
    return r.target;
  };
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('client certificates inline, CA inline, TLS server name', () => {
    const file = kubeconfig(
      'inline',
      `{ server: "https://10.0.0.1:6443", certificate-authority-data: ${b64('CA')}, tls-server-name: api.test }`,
      `{ client-certificate-data: ${b64('CERT')}, client-key-data: ${b64('KEY')} }`,
    );
    const t = target(resolveKube({ kubeconfig: file }, HOME));
    assert.equal(t.server.href, 'https://10.0.0.1:6443/');
    assert.equal(t.ca?.toString(), 'CA');
    assert.equal(t.cert?.toString(), 'CERT');
    assert.equal(t.key?.toString(), 'KEY');
    assert.equal(t.tlsServerName, 'api.test');
    assert.equal(t.insecure, false);
    assert.equal(t.token, undefined);
    assert.equal(t.source, `kubeconfig ${file}`);
  });

  it('client certificates and CA by file, relative to the kubeconfig', () => {
    writeFileSync(join(dir, 'u.crt'), 'CERT');
    writeFileSync(join(dir, 'u.key'), 'KEY');
    writeFileSync(join(dir, 'ca.crt'), 'CAFILE');
    const file = kubeconfig(
      'byfile',
      '{ server: "https://10.0.0.1:6443", certificate-authority: ca.crt }',
      `{ client-certificate: u.crt, client-key: ${join(dir, 'u.key')} }`,
    );
    const t = target(resolveKube({ kubeconfig: file }, HOME));
    assert.equal(t.ca?.toString(), 'CAFILE');
    assert.equal(t.cert?.toString(), 'CERT');
    assert.equal(t.key?.toString(), 'KEY');
  });

  it('a bearer token, insecure-skip-tls-verify, and the context named in config', () => {
    const file = kubeconfig(
      'token',
      '{ server: "https://h:6443", insecure-skip-tls-verify: true }',
      '{ token: abc }',
    );
    const t = target(resolveKube({ kubeconfig: file }, HOME));
    assert.equal(t.token, 'abc');
    assert.equal(t.insecure, true);
    const other = target(resolveKube({ kubeconfig: file, context: 'y' }, HOME));
    assert.equal(other.token, undefined, 'context y has no user');
  });

  it('a token file, relative to the kubeconfig (read per request, not now)', () => {
    const file = kubeconfig('tokenfile', '{ server: "https://h:6443" }', '{ tokenFile: sa/token }');
    const t = target(resolveKube({ kubeconfig: file }, HOME));
    assert.equal(t.tokenFile, join(dir, 'sa', 'token'));
    assert.equal(t.token, undefined);
  });

  it('KUBECONFIG when config names none; ~/.kube/config after it', () => {
    const file = kubeconfig('env', '{ server: "https://h:6443" }', '{ token: fromenv }');
    assert.equal(target(resolveKube({}, { ...HOME, KUBECONFIG: file })).token, 'fromenv');
    const home = mkdtempSync(join(dir, 'home-'));
    mkdirSync(join(home, '.kube'));
    copyFileSync(
      kubeconfig('home', '{ server: "https://h:6443" }', '{ token: home }'),
      join(home, '.kube', 'config'),
    );
    assert.equal(target(resolveKube({}, { HOME: home })).token, 'home');
    assert.equal(target(resolveKube({}, { HOME: home, KUBECONFIG: file })).token, 'fromenv');
  });

  it('the same YAML written by kubectl (block style) reads the same', () => {
    const file = join(dir, 'kubectl');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'clusters:',
        '- cluster:',
        `    certificate-authority-data: ${b64('CA')}`,
        '    server: https://127.0.0.1:6443',
        '  name: kind',
        'contexts:',
        '- context:',
        '    cluster: kind',
        '    user: admin',
        '  name: kind',
        'current-context: kind',
        'kind: Config',
        'preferences: {}',
        'users:',
        '- name: admin',
        '  user:',
        `    client-certificate-data: ${b64('CERT')}`,
        `    client-key-data: ${b64('KEY')}`,
        '',
      ].join('\n'),
    );
    const t = target(resolveKube({ kubeconfig: file }, HOME));
    assert.equal(t.server.href, 'https://127.0.0.1:6443/');
    assert.equal(t.cert?.toString(), 'CERT');
  });

  const fullClient: [string, () => KubeResolution, RegExp][] = [
    ['an exec credential plugin', () =>
      resolveKube({ kubeconfig: kubeconfig('exec', '{ server: "https://h" }', '{ exec: { command: x } }') }, HOME), /uses exec/],
    ['an auth provider', () =>
      resolveKube({ kubeconfig: kubeconfig('ap', '{ server: "https://h" }', '{ auth-provider: { name: oidc } }') }, HOME), /uses auth-provider/],
    ['a password', () =>
      resolveKube({ kubeconfig: kubeconfig('pw', '{ server: "https://h" }', '{ username: a, password: b }') }, HOME), /uses username, password/],
    ['a proxy', () =>
      resolveKube({ kubeconfig: kubeconfig('proxy', '{ server: "https://h", proxy-url: "http://p" }', '{ token: t }') }, HOME), /uses proxy-url/],
    ['several KUBECONFIG files', () => resolveKube({}, { ...HOME, KUBECONFIG: '/a:/b' }), /several files/],
  ]; // prettier-ignore
  for (const [name, resolve, reason] of fullClient) {
    it(`left to the full client: ${name}`, () => {
      const r = resolve();
      assert.equal(r.target, undefined);
      assert.match(r.full?.reason ?? '', reason);
    });
  }
  it('the full client gets the file and the context of an exec kubeconfig', () => {
    const file = kubeconfig('exec2', '{ server: "https://h" }', '{ exec: { command: x } }');
    assert.deepEqual(resolveKube({ kubeconfig: file }, HOME).full, {
      file,
      context: 'x',
      reason: `kubeconfig ${file} uses exec`,
    });
  });

  const bad: [string, () => KubeResolution, string, RegExp][] = [
    ['a context that is not in the file', () =>
      resolveKube({ kubeconfig: kubeconfig('ctx', '{ server: "https://h" }', '{ token: t }'), context: 'nope' }, HOME),
      'kubernetes.context', /^kubernetes\.context: kubeconfig .*ctx has no context named "nope"$/],
    ['a current-context that names no context', () =>
      resolveKube({ kubeconfig: kubeconfig('cur', '{ server: "https://h" }', '{ token: t }', ['current-context: gone']) }, HOME),
      'kubernetes.context', /current-context "gone" .* names no context; set kubernetes\.context/],
    ['no current-context and none in config', () => {
      const file = join(dir, 'nocur');
      writeFileSync(file, 'clusters: []\ncontexts: []\n');
      return resolveKube({ kubeconfig: file }, HOME);
    }, 'kubernetes.context', /has no current-context/],
    ['a cluster without a server', () =>
      resolveKube({ kubeconfig: kubeconfig('nosrv', '{ certificate-authority-data: eA== }', '{ token: t }') }, HOME),
      'kubernetes.kubeconfig', /cluster "c" of kubeconfig .* has no server/],
    ['a client certificate file that is not there', () =>
      resolveKube({ kubeconfig: kubeconfig('nocert', '{ server: "https://h" }', '{ client-certificate: gone.crt, client-key: gone.key }') }, HOME),
      'kubernetes.kubeconfig', /client-certificate gone\.crt of kubeconfig .* cannot be read \(ENOENT\)/],
    ['a kubeconfig file that is not there', () => resolveKube({ kubeconfig: join(dir, 'absent') }, HOME),
      'kubernetes.kubeconfig', /absent cannot be read \(ENOENT\)/],
    ['a kubeconfig that does not parse', () => {
      writeFileSync(join(dir, 'bad'), 'clusters: [');
      return resolveKube({ kubeconfig: join(dir, 'bad') }, HOME);
    }, 'kubernetes.kubeconfig', /bad is not YAML/],
    ['no kubeconfig and no pod environment', () => resolveKube({}, HOME),
      'kubernetes.kubeconfig', /no kubeconfig .* not running in a pod/],
  ]; // prettier-ignore
  for (const [name, resolve, field, message] of bad) {
    it(`400 naming ${field}: ${name}`, () => {
      assert.throws(resolve, (err: unknown) => {
        assert.ok(err instanceof AppError, String(err));
        assert.equal(err.status, 400);
        assert.equal(err.field, field);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe('cluster/kube-client: kubeConfigFor a resolved target', () => {
  it('the full client gets the same server, CA, client certificate and token', () => {
    const kc = kubeConfigFor({
      target: {
        server: new URL('https://10.0.0.1:6443'),
        ca: Buffer.from('CA'),
        cert: Buffer.from('CERT'),
        key: Buffer.from('KEY'),
        token: 'tok',
        insecure: false,
        tlsServerName: 'api.test',
        source: 'kubeconfig f',
      },
    });
    const cluster = kc.getCurrentCluster();
    assert.equal(cluster?.server, 'https://10.0.0.1:6443');
    assert.equal(Buffer.from(cluster?.caData ?? '', 'base64').toString(), 'CA');
    assert.equal(cluster?.tlsServerName, 'api.test');
    assert.equal(cluster?.skipTLSVerify, false);
    const user = kc.getCurrentUser();
    assert.equal(Buffer.from(user?.certData ?? '', 'base64').toString(), 'CERT');
    assert.equal(Buffer.from(user?.keyData ?? '', 'base64').toString(), 'KEY');
    assert.equal(user?.token, 'tok');
  });

  it('a token file becomes the client’s re-reading tokenFile provider; a server path is kept', () => {
    const kc = kubeConfigFor({
      target: {
        server: new URL('https://proxy.test/k8s/'),
        tokenFile: '/run/token',
        insecure: true,
        source: 'kubeconfig f',
      },
    });
    assert.equal(kc.getCurrentCluster()?.server, 'https://proxy.test/k8s');
    assert.equal(kc.getCurrentCluster()?.skipTLSVerify, true);
    assert.deepEqual(kc.getCurrentUser()?.authProvider, {
      name: 'tokenFile',
      config: { tokenFile: '/run/token' },
    });
  });
});
