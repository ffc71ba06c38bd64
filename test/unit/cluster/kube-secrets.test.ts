/**
 * Which kubeconfigs the Secret writer (kube-secrets.ts) reads itself and which it leaves to the full
 * Kubernetes client: it must never guess at a way of authenticating it does not implement.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { secretsTarget } from '../../../src/cluster/kube-secrets.js';

describe('cluster/kube-secrets: secretsTarget', () => {
  const dir = mkdtempSync(join(tmpdir(), 'podgate-kube-secrets-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = (name: string, cluster: string, user: string): string => {
    const file = join(dir, name);
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{ name: c, cluster: ${cluster} }]`,
        `users: [{ name: u, user: ${user} }]`,
        'contexts: [{ name: x, context: { cluster: c, user: u } }, { name: y, context: { cluster: c } }]',
        'current-context: x',
        '',
      ].join('\n'),
    );
    return file;
  };
  const HOME = { HOME: dir }; // no ~/.kube/config there

  it('client certificate files relative to the kubeconfig, CA data, TLS server name', () => {
    writeFileSync(join(dir, 'u.crt'), 'CERT');
    writeFileSync(join(dir, 'u.key'), 'KEY');
    const file = kubeconfig(
      'certs',
      `{ server: "https://10.0.0.1:6443", certificate-authority-data: ${Buffer.from('CA').toString('base64')}, tls-server-name: api.test }`,
      '{ client-certificate: u.crt, client-key: u.key }',
    );
    const t = secretsTarget({ kubeconfig: file }, HOME);
    assert.ok(t);
    assert.equal(t.server.href, 'https://10.0.0.1:6443/');
    assert.equal(t.ca?.toString(), 'CA');
    assert.equal(t.cert?.toString(), 'CERT');
    assert.equal(t.key?.toString(), 'KEY');
    assert.equal(t.tlsServerName, 'api.test');
    assert.equal(t.insecure, false);
    assert.equal(t.token, undefined);
  });

  it('a bearer token, and the context named in config instead of the current one', () => {
    const file = kubeconfig(
      'token',
      '{ server: "https://h:6443", insecure-skip-tls-verify: true }',
      '{ token: abc }',
    );
    assert.equal(secretsTarget({ kubeconfig: file }, HOME)?.token, 'abc');
    assert.equal(secretsTarget({ kubeconfig: file }, HOME)?.insecure, true);
    const other = secretsTarget({ kubeconfig: file, context: 'y' }, HOME);
    assert.ok(other);
    assert.equal(other.token, undefined);
  });

  it('KUBECONFIG when config names none', () => {
    const file = kubeconfig('env', '{ server: "https://h:6443" }', '{ token: fromenv }');
    assert.equal(secretsTarget({}, { ...HOME, KUBECONFIG: file })?.token, 'fromenv');
  });

  const fullClient: [string, () => ReturnType<typeof secretsTarget>][] = [
    ['an exec credential plugin', () =>
      secretsTarget({ kubeconfig: kubeconfig('exec', '{ server: "https://h" }', '{ exec: { command: x } }') }, HOME)],
    ['an auth provider', () =>
      secretsTarget({ kubeconfig: kubeconfig('ap', '{ server: "https://h" }', '{ auth-provider: { name: oidc } }') }, HOME)],
    ['a proxy', () =>
      secretsTarget({ kubeconfig: kubeconfig('proxy', '{ server: "https://h", proxy-url: "http://p" }', '{ token: t }') }, HOME)],
    ['an SSH bastion', () =>
      secretsTarget({ kubeconfig: kubeconfig('b', '{ server: "https://h" }', '{ token: t }'), sshBastion: 'a@b' }, HOME)],
    ['several KUBECONFIG files', () => secretsTarget({}, { ...HOME, KUBECONFIG: '/a:/b' })],
    ['a kubeconfig that does not parse', () => {
      writeFileSync(join(dir, 'bad'), 'clusters: [');
      return secretsTarget({ kubeconfig: join(dir, 'bad') }, HOME);
    }],
    ['no kubeconfig and no pod environment', () => secretsTarget({}, HOME)],
  ]; // prettier-ignore
  for (const [name, target] of fullClient) {
    it(`left to the full client: ${name}`, () => assert.equal(target(), undefined));
  }
});
