import { readCertificate } from '../pki/cert-info.js';
import type { AppContext } from './context.js';
import { effectiveNetwork } from './network.js';

export type CheckLevel = 'ok' | 'warn' | 'fail';
export interface CheckFinding {
  level: CheckLevel;
  check: string;
  detail: string;
}

function block(profile: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>\\s*([\\s\\S]*?)</${tag}>`).exec(profile)?.[1];
}

function pems(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * What can be told about a client profile from the server's records, without connecting: its
 * certificate (known, valid, not revoked, expiry), whether its CA is one in force, and whether its
 * `remote` lines still match the endpoints and port clients are given now.
 */
export async function checkProfileOffline(ctx: AppContext, profile: string): Promise<CheckFinding[]> {
  const out: CheckFinding[] = [];
  const add = (level: CheckLevel, check: string, detail: string): number =>
    out.push({ level, check, detail });
  const certPem = block(profile, 'cert');
  if (!certPem) {
    add('fail', 'profile', 'no <cert> block: this is not a podgate client profile');
    return out;
  }
  let cert;
  try {
    cert = readCertificate(certPem);
  } catch {
    add('fail', 'profile', 'the <cert> block is not a certificate');
    return out;
  }
  const now = ctx.now();
  const days = (cert.notAfter.getTime() - now.getTime()) / 86_400_000;
  if (days <= 0)
    add(
      'fail',
      'expiry',
      `${cert.commonName} expired on ${cert.notAfter.toISOString()}: renew it on the devices page`,
    );
  else
    add(
      days < ctx.config.vpn.expiryWarningDays ? 'warn' : 'ok',
      'expiry',
      `${cert.commonName} valid until ${cert.notAfter.toISOString()} (${Math.floor(days)} days)`,
    );
  const row = await ctx.store.getCert(cert.serial);
  if (!row) add('fail', 'certificate', `serial ${cert.serial} is not one this podgate issued`);
  else if (row.status === 'revoked')
    add(
      'fail',
      'certificate',
      `serial ${cert.serial} was revoked (${row.revocationReason ?? 'unspecified'}): make a new device`,
    );
  else if (row.supersededBy)
    add('warn', 'certificate', `renewed: import the new profile (serial ${row.supersededBy})`);
  else add('ok', 'certificate', `serial ${cert.serial} is valid`);

  ctx.cas.refresh();
  const inForce = [ctx.cas.current, ...(ctx.cas.previous ? [ctx.cas.previous] : [])];
  const profileCas = pems(block(profile, 'ca') ?? '').flatMap((p) => {
    try {
      return [readCertificate(p).ski.toString('hex')];
    } catch {
      return [];
    }
  });
  const serverCa = ctx.cas.current.keyId;
  if (!profileCas.includes(serverCa) && !(ctx.cas.previous && profileCas.includes(ctx.cas.previous.keyId)))
    add(
      'fail',
      'ca',
      'the profile trusts no CA in force: the server certificate will be refused; make a new profile',
    );
  else
    add(
      'ok',
      'ca',
      `the profile trusts ${inForce
        .filter((c) => profileCas.includes(c.keyId))
        .map((c) => c.commonName)
        .join(', ')}`,
    );
  if (row?.issuerKeyId && !inForce.some((c) => c.keyId === row.issuerKeyId))
    add('fail', 'ca', 'its certificate was issued by a CA that is no longer in force: make a new profile');

  const net = await effectiveNetwork(ctx.config, ctx.store);
  const { port, proto } = ctx.config.vpn;
  const remotes = [...profile.matchAll(/^remote (\S+) (\d+) (udp|tcp)\s*$/gm)].map((m) => ({
    host: m[1]!,
    port: Number(m[2]),
    proto: m[3]!,
  }));
  const current = remotes.filter(
    (r) => net.endpoints.includes(r.host) && r.port === port && r.proto === proto,
  );
  if (remotes.length === 0) add('fail', 'endpoints', 'no remote line');
  else if (current.length === 0)
    add(
      'fail',
      'endpoints',
      `none of its remotes (${remotes.map((r) => `${r.host}:${r.port}/${r.proto}`).join(', ')}) is a current endpoint (${net.endpoints.join(', ')}:${port}/${proto}): make a new profile`,
    );
  else if (current.length < remotes.length)
    add('warn', 'endpoints', `${remotes.length - current.length} of its remotes are no longer endpoints`);
  else add('ok', 'endpoints', remotes.map((r) => `${r.host}:${r.port}/${r.proto}`).join(', '));
  return out;
}

/** Compares the routes a server pushed in a real handshake with the routes clients should get. */
export async function checkPushedRoutes(ctx: AppContext, pushed: readonly string[]): Promise<CheckFinding[]> {
  const net = await effectiveNetwork(ctx.config, ctx.store);
  const want = [...net.podCidrs, ...net.serviceCidrs, ...ctx.config.vpn.routes.extra];
  const missing = want.filter((c) => !pushed.includes(c));
  if (missing.length > 0)
    return [
      {
        level: 'fail',
        check: 'routes',
        detail: `the server does not push ${missing.join(', ')} (it pushes ${pushed.join(', ') || 'nothing'}): restart or redeploy the server so it takes the current routes`,
      },
    ];
  return [{ level: 'ok', check: 'routes', detail: `pushed: ${pushed.join(', ')}` }];
}
