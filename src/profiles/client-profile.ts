import { compileProfileTemplate } from './handlebars.js';
import { BadRequest } from '../lib/errors.js';
import { assertSafeValue, checkRenderedConfig } from './guard.js';

/** Everything a client profile needs; all PEM blocks arrive as text, profiles do no I/O. */
export interface ClientProfileInput {
  /** Template source of client.ovpn.hbs (loaded by the caller). */
  template: string;
  commonName: string;
  serverName: string;
  remotes: readonly { host: string; port: number; proto: 'udp' | 'tcp' }[];
  caPem: string;
  certPem: string;
  /** Absent when the key stayed on the device (CSR upload). */
  keyPem?: string;
  tlsCryptV2KeyPem?: string;
  tlsCryptKeyPem?: string;
  issuedAt: Date;
  notAfter: Date;
}

/** Directives client.ovpn.hbs may produce; anything else in the output is a bug and is refused. */
export const CLIENT_DIRECTIVES: ReadonlySet<string> = new Set([
  'client',
  'dev',
  'nobind',
  'remote',
  'remote-random',
  'resolv-retry',
  'server-poll-timeout',
  'connect-retry',
  'persist-key',
  'persist-tun',
  'remote-cert-tls',
  'verify-x509-name',
  'tls-version-min',
  'data-ciphers',
  'auth-nocache',
  'explicit-exit-notify',
  'verb',
]);

const compiled = new Map<string, HandlebarsTemplateDelegate>();
function compile(template: string): HandlebarsTemplateDelegate {
  let fn = compiled.get(template);
  if (!fn) {
    // noEscape: HTML escaping would turn the "=" of PEM base64 into "&#x3D;"; values are checked instead.
    fn = compileProfileTemplate(template);
    compiled.set(template, fn);
  }
  return fn;
}

const HOST = /^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$/;

/** Renders a ready-to-import .ovpn and checks it with the injection guard before returning it. */
export function renderClientProfile(input: ClientProfileInput): string {
  if (input.remotes.length === 0) {
    throw new BadRequest(
      'vpn.endpoints is empty: set it in the config or run `podgate k8s discover`',
      'vpn.endpoints',
    );
  }
  for (const [i, r] of input.remotes.entries()) {
    assertSafeValue(`vpn.endpoints[${i}]`, r.host);
    if (!HOST.test(r.host))
      throw new BadRequest(`vpn.endpoints[${i}] "${r.host}" is not a host name or IP`, 'vpn.endpoints');
  }
  assertSafeValue('commonName', input.commonName);
  assertSafeValue('serverName', input.serverName);
  const blocks: Record<string, string> = { ca: input.caPem, cert: input.certPem };
  if (input.keyPem) blocks.key = input.keyPem;
  if (input.tlsCryptV2KeyPem) blocks['tls-crypt-v2'] = input.tlsCryptV2KeyPem;
  if (input.tlsCryptKeyPem) blocks['tls-crypt'] = input.tlsCryptKeyPem;
  const text = compile(input.template)({
    commonName: input.commonName,
    serverName: input.serverName,
    remotes: input.remotes,
    // Over UDP the server learns that a client quit only from this (else after ping-restart, 2 min):
    // it ends the session at once, for the session history and the address pool.
    udp: input.remotes.every((r) => r.proto === 'udp'),
    caPem: input.caPem.trim(),
    certPem: input.certPem.trim(),
    keyPem: input.keyPem?.trim() ?? '',
    tlsCryptV2KeyPem: input.tlsCryptV2KeyPem?.trim() ?? '',
    tlsCryptKeyPem: input.tlsCryptKeyPem?.trim() ?? '',
    issuedAt: input.issuedAt.toISOString(),
    notAfter: input.notAfter.toISOString(),
  });
  checkRenderedConfig(text, { directives: CLIENT_DIRECTIVES, blocks });
  return text;
}
