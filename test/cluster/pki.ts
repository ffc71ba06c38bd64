/**
 * Certificates and keys of the test cluster, made with the openssl CLI (EC P-256, 30 days): one CA, the API
 * server's serving certificate, client certificates per identity, and the service-account signing key.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ClientIdentity {
  /** File stem: `<stem>.crt`, `<stem>.key`. */
  stem: string;
  cn: string;
  org?: string;
}

// No default extensions: each certificate gets exactly what -addext gives it.
const OPENSSL_CONF = '[req]\ndistinguished_name = dn\n[dn]\n';

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, OPENSSL_CONF: join(dir, 'openssl.cnf') },
  });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeCa(dir: string): void {
  writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CONF);
  openssl(dir, [
    'req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30',
    '-subj', '/CN=podgate-test-cluster-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]); // prettier-ignore
}

function leaf(dir: string, stem: string, subj: string, ext: string[]): void {
  openssl(dir, [
    'req', '-x509', ...EC, '-keyout', `${stem}.key`, '-out', `${stem}.crt`, '-days', '30',
    '-CA', 'ca.crt', '-CAkey', 'ca.key', '-subj', subj,
    '-addext', 'basicConstraints=critical,CA:FALSE',
    '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment',
    ...ext.flatMap((e) => ['-addext', e]),
  ]); // prettier-ignore
}

export function makeServing(dir: string, stem: string, cn: string, sans: string[]): void {
  leaf(dir, stem, `/CN=${cn}`, ['extendedKeyUsage=serverAuth', `subjectAltName=${sans.join(',')}`]);
}

export function makeClient(dir: string, id: ClientIdentity): void {
  const subj = `${id.org ? `/O=${id.org}` : ''}/CN=${id.cn}`;
  leaf(dir, id.stem, subj, ['extendedKeyUsage=clientAuth']);
}

/** The key the API server signs service-account tokens with (and the controller-manager too). */
export function makeServiceAccountKey(dir: string): void {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'sa.key']);
  openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

const b64 = (file: string) => readFileSync(file).toString('base64');

/** A kubeconfig with the client certificate `<stem>` embedded. */
export function writeKubeconfig(dir: string, file: string, server: string, stem: string): string {
  const path = join(dir, file);
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: podgate-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(join(dir, 'ca.crt'))}`,
    'users:',
    `- name: ${stem}`,
    '  user:',
    `    client-certificate-data: ${b64(join(dir, `${stem}.crt`))}`,
    `    client-key-data: ${b64(join(dir, `${stem}.key`))}`,
    'contexts:',
    '- name: podgate-test',
    '  context:',
    '    cluster: podgate-test',
    `    user: ${stem}`,
    'current-context: podgate-test',
    '',
  ].join('\n');
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}
