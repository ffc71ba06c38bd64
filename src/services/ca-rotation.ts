import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Conflict } from '../lib/errors.js';
import { logger } from '../lib/logger.js';
import { writeFileAtomic } from '../lib/fs-atomic.js';
import { CertificateAuthority, createCa, encryptPrivateKey, type CaKeyType } from '../pki/index.js';
import {
  finishCaChange,
  readCaFiles,
  withCaLock,
  withCaLockAsync,
  type CaChangeProbe,
  NEXT_CA_CERT_FILE,
  NEXT_CA_KEY_FILE,
  PREVIOUS_CA_CERT_FILE,
  PREVIOUS_CA_KEY_FILE,
} from './ca-files.js';
import type { AppContext } from './context.js';
import { resolveKeySecret } from './key-secret.js';

const log = logger.child({ module: 'ca-rotation' });

/** A subject different from the outgoing CA's: OpenSSL finds a certificate's CRL by its issuer name. */
function nextCommonName(base: string, previous: string, now: Date): string {
  const stamp = now.toISOString().slice(0, 16).replace(/[-:T]/g, '');
  const name = `${base.slice(0, 64 - stamp.length - 1)} ${stamp}`;
  return name === previous ? `${name.slice(0, 62)} 2` : name;
}

/**
 * `podgate ca rotate`: makes a new CA and switches to it, keeping the old one as "previous". Until
 * `retireOldCa`, the server trusts both (CA bundle, one CRL per CA) and keeps its certificate from the
 * old CA, new profiles come from the new CA (and carry both CAs), and old profiles keep working.
 * Order, so a crash at any point is finished by the next start (loadOrCreateCa → finishRotation):
 * 1. rows from before issuer tracking (issuerKeyId null) get the outgoing key id (harmless if the switch never
 *    happens: the CRL builder treats the current CA's id like null); 2. the new CA is written as ca-next.*;
 * 3. renames switch current → previous and next → current.
 * Steps 1–3 hold the CA lock (two rotations cannot mix their files) and end with a check that the new
 * pair loads; a crash is finished by the next start (finishCaChange).
 * The caller reopens the context and re-signs the CRL (now one per CA). Running processes see the new
 * files through their CaSet (services/ca-set.ts): `serve` issues from the new CA, `server run`
 * restarts openvpn with the new CA set.
 */
export async function rotateCa(
  ctx: AppContext,
  o: { actor: string; keyType?: CaKeyType; probe?: CaChangeProbe },
): Promise<{ commonName: string; keyId: string; tagged: number }> {
  const inProgress = (old: string) =>
    new Conflict(
      `a CA rotation is already in progress (old CA "${old}" still trusted): run \`podgate ca retire-old\` first`,
      'ca',
    );
  if (ctx.previousCa) throw inProgress(ctx.previousCa.commonName);
  const now = ctx.now();
  const keyType = o.keyType ?? ctx.config.ca.keyType;
  const secret = resolveKeySecret(ctx.config, ctx.dataDir, false);
  const material = await createCa({
    commonName: nextCommonName(ctx.config.ca.commonName, ctx.ca.commonName, now),
    keyType,
    days: ctx.config.ca.days,
    now,
  });
  const outgoing = ctx.ca.keyId;
  // Everything below holds the CA lock: another `ca rotate` may have switched the CA since this
  // context was opened (then the files say so), and none can write its ca-next.* files meanwhile.
  const tagged = await withCaLockAsync(ctx.dataDir, async () => {
    finishCaChange(ctx.dataDir, secret);
    const onDisk = readCaFiles(ctx.dataDir, secret);
    if (onDisk.previous) throw inProgress(onDisk.previous.commonName);
    if (onDisk.ca.keyId !== outgoing)
      throw new Conflict(
        `the CA changed while this rotation ran (another \`ca rotate\`): nothing done`,
        'ca',
      );
    const n = await tagOutgoing();
    writeFileAtomic(join(ctx.dataDir, NEXT_CA_KEY_FILE), encryptPrivateKey(material.keyPem, secret), 0o600);
    o.probe?.('rotate:next-key');
    writeFileAtomic(join(ctx.dataDir, NEXT_CA_CERT_FILE), material.certPem, 0o644);
    o.probe?.('rotate:next-cert');
    finishCaChange(ctx.dataDir, secret, o.probe);
    return n;
  });
  log.info({ outgoing, keyType, tagged }, 'CA rotated; the old CA stays trusted until retire-old');
  const ca = CertificateAuthority.load(material);
  return { commonName: ca.commonName, keyId: ca.keyId, tagged };

  async function tagOutgoing(): Promise<number> {
    return await ctx.store.transaction(async (tx) => {
      const n = await tx.assignIssuerKeyId(outgoing);
      await tx.appendAudit({
        actor: o.actor,
        action: 'ca.rotate',
        target: ctx.ca.commonName,
        result: 'ok',
        details: { outgoingKeyId: outgoing, keyType, certificates: n },
      });
      return n;
    });
  }
}

/**
 * `podgate ca retire-old`: ends the overlap. The old CA's files are kept aside as
 * `ca-retired-<key id>.*` (never used again), so the server trusts the new CA only; its server
 * certificate is re-issued by the new CA (by the caller, or a running `server run` on its next CA
 * check). Old-CA profiles stop connecting.
 */
export async function retireOldCa(
  ctx: AppContext,
  actor: string,
  probe?: CaChangeProbe,
): Promise<{ commonName: string; stillValid: number; }> {
  const old = ctx.previousCa;
  if (!old) throw new Conflict('no CA rotation is in progress: there is no old CA to retire', 'ca');
  const stillValid = (await ctx.store
      .listCerts({ status: 'valid' }))
    .items.filter((c) => c.kind !== 'server' && c.issuerKeyId === old.keyId).length;
  const f = (name: string) => join(ctx.dataDir, name);
  const retired = `ca-retired-${old.keyId.slice(0, 16)}`;
  const secret = resolveKeySecret(ctx.config, ctx.dataDir, false);
  withCaLock(ctx.dataDir, () => {
    finishCaChange(ctx.dataDir, secret);
    // Certificate first: without ca-previous.crt the old CA is not loaded, even if its key file remains
    // (and finishCaChange moves that key next to its retired certificate).
    if (existsSync(f(PREVIOUS_CA_CERT_FILE))) {
      renameSync(f(PREVIOUS_CA_CERT_FILE), f(`${retired}.crt`));
      probe?.('retire:cert');
    }
    if (existsSync(f(PREVIOUS_CA_KEY_FILE))) renameSync(f(PREVIOUS_CA_KEY_FILE), f(`${retired}.key.enc`));
    readCaFiles(ctx.dataDir, secret); // the current pair still loads
  });
  await ctx.store.appendAudit({
    actor,
    action: 'ca.retire-old',
    target: old.commonName,
    result: 'ok',
    details: { keyId: old.keyId, validCertificatesLeft: stillValid },
  });
  log.info({ keyId: old.keyId, stillValid }, 'old CA retired');
  return { commonName: old.commonName, stillValid };
}
