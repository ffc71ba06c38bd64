import type { CertRecord } from '../store/types.js';
import type { AppContext } from './context.js';
import type { CaSet } from './ca-set.js';

const DAY = 86_400_000;
/** A CA expiring within this many days is warned about (doctor, web, metrics): rotation needs time. */
export const CA_WARN_DAYS = 365;

export interface CaSummary {
  commonName: string;
  keyId: string;
  notAfter: Date;
  daysLeft: number;
  /** Within CA_WARN_DAYS of expiry. */
  expiringSoon: boolean;
}

export interface CaStatus {
  current: CaSummary;
  /** Present during a rotation's overlap. */
  previous?: CaSummary;
  /** Valid client and gateway certificates still issued by the previous CA (to be renewed before retire-old). */
  onPreviousCa: CertRecord[];
  warnings: string[];
}

function summary(ca: { commonName: string; keyId: string; notAfter: Date }, now: Date): CaSummary {
  const daysLeft = Math.floor((ca.notAfter.getTime() - now.getTime()) / DAY);
  return {
    commonName: ca.commonName,
    keyId: ca.keyId,
    notAfter: ca.notAfter,
    daysLeft,
    expiringSoon: daysLeft < CA_WARN_DAYS,
  };
}

/**
 * The warning for a CA within CA_WARN_DAYS of expiry, or undefined. Cheap (no store query): the web
 * app shows it as a banner on every page an admin sees.
 */
export function caExpiryWarning(ctx: Pick<AppContext, 'ca' | 'now'> & { cas?: CaSet }): string | undefined {
  ctx.cas?.refresh();
  const current = summary(ctx.ca, ctx.now());
  if (!current.expiringSoon) return undefined;
  const when = current.notAfter.toISOString().slice(0, 10);
  return current.daysLeft < 0
    ? `the CA "${current.commonName}" expired on ${when}: no certificate it issued is valid; run \`podgate ca rotate\` and renew every device`
    : `the CA "${current.commonName}" expires in ${current.daysLeft} days (${when}): run \`podgate ca rotate\` and renew every device`;
}

/** The CAs in force, their expiry, and which devices still depend on the outgoing CA. */
export async function caStatus(
  ctx: Pick<AppContext, 'ca' | 'previousCa' | 'store' | 'now'> & { cas?: CaSet },
): Promise<CaStatus> {
  ctx.cas?.refresh(); // a long-running `serve` reports a rotation made by the CLI
  const now = ctx.now();
  const current = summary(ctx.ca, now);
  const warnings: string[] = [];
  const expiry = caExpiryWarning(ctx);
  if (expiry) warnings.push(expiry);
  if (!ctx.previousCa) return { current, onPreviousCa: [], warnings };
  const previous = summary(ctx.previousCa, now);
  const keyId = ctx.previousCa.keyId;
  const onPreviousCa = (await ctx.store
      .listCerts({ status: 'valid', sort: 'owner', order: 'asc' }))
    .items.filter((c) => c.kind !== 'server' && c.issuerKeyId === keyId && c.supersededBy === null);
  warnings.push(
    `CA rotation in progress: ${onPreviousCa.length} device(s) still use the old CA "${previous.commonName}"; renew them, then run \`podgate ca retire-old\``,
  );
  return { current, previous, onPreviousCa, warnings };
}
