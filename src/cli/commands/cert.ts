import { resolve } from 'node:path';
import type { Command } from 'commander';
import { BadRequest } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import type { PublishFailure } from '../../services/revocation.js';
import type { CertRecord } from '../../store/types.js';
import { table, withContext, type CliEnv } from '../env.js';
import { parseExpiringWindow } from './cert-expiring.js';
import { registerRenew } from './cert-renew.js';
import { checkOutPath, deliverProfile, readCsrOption } from './profile-out.js';

function certJson(c: CertRecord) {
  return {
    serial: c.serial,
    commonName: c.commonName,
    owner: c.ownerName,
    deviceName: c.deviceName,
    kind: c.kind,
    keyType: c.keyType,
    status: c.status,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    revokedAt: c.revokedAt?.toISOString() ?? null,
    revocationReason: c.revocationReason,
    supersededBy: c.supersededBy,
    supersedeAt: c.supersedeAt?.toISOString() ?? null,
  };
}

/** Lists only read: the CA is not read (nor its key decrypted) unless something signs. */
const READ_ONLY = { quiet: true, readOnly: true };

/** `podgate cert issue|list|revoke` and `podgate crl`. */
export function register(program: Command, env: CliEnv): void {
  const cert = program.command('cert').description('client certificates and profiles');
  registerIssue(cert, env);
  registerList(cert, env);
  registerRenew(cert, env);
  registerRevoke(cert, env);
  registerCrl(program, env);
}

/** `cert issue`: the --out path is checked and the CSR read before anything is issued. */
function registerIssue(cert: Command, env: CliEnv): void {
  cert
    .command('issue <name>')
    .description('issue a certificate and write a ready-to-import .ovpn profile')
    .requiredOption('--owner <user>', 'user who owns the device')
    .requiredOption('--out <file>', 'where to write the .ovpn (mode 0600; "-" for stdout)')
    .option('--key-type <type>', 'ec-p256 | rsa-2048 | rsa-3072')
    .option('--kind <kind>', 'client | gateway', 'client')
    .option('--device <name>', 'device name (defaults to the certificate name)')
    .option('--csr <file>', 'PKCS#10 request: the private key stays on the device')
    .action(
      async (
        name: string,
        o: { owner: string; out: string; keyType?: string; kind: string; device?: string; csr?: string },
        cmd: Command,
      ) => {
        const out = checkOutPath(o.out);
        const csrPem = readCsrOption(o.csr);
        await withContext(env, cmd, async (ctx) => {
          const { cert: c, profile } = await ctx.devices.issue({
            actor: 'cli',
            owner: o.owner,
            commonName: name,
            deviceName: o.device,
            kind: o.kind as 'client' | 'gateway',
            keyType: o.keyType,
            csrPem,
          });
          if (!(await deliverProfile(ctx, env, out, profile, c.serial))) return;
          env.out(
            `issued ${c.commonName} (serial ${c.serial}, ${c.keyType}, valid until ${c.notAfter.toISOString()})`,
          );
          env.out(`profile written to ${out}`);
        });
      },
    );
}

/** `cert list`: the whole table (or JSON with --json), oldest first. */
function registerList(cert: Command, env: CliEnv): void {
  cert
    .command('list')
    .description('list certificates')
    .option('--status <status>', 'valid | revoked')
    .option('--owner <user>', 'only this owner')
    .option('--search <text>', 'substring of name, device or owner')
    .option('--expiring <days>', 'only valid certificates expiring within this window, e.g. 30d')
    .action(
      async (o: { status?: string; owner?: string; search?: string; expiring?: string }, cmd: Command) => {
        const expiring = o.expiring === undefined ? undefined : parseExpiringWindow(o.expiring);
        await withContext(
          env,
          cmd,
          async (ctx, g) => {
            if (o.status && o.status !== 'valid' && o.status !== 'revoked') {
              throw new BadRequest('--status must be "valid" or "revoked"', 'status');
            }
            const ownerId = o.owner ? (await ctx.users.get(o.owner)).id : undefined;
            const { items } = await ctx.store.listCerts({
              status: expiring === undefined ? (o.status as 'valid' | 'revoked' | undefined) : 'valid',
              ownerId,
              search: o.search,
              ...(expiring === undefined ? {} : { expiringWithinDays: expiring, now: ctx.now() }),
              sort: expiring === undefined ? 'createdAt' : 'notAfter',
              order: 'asc',
              limit: 100000,
            });
            if (g.json) {
              env.out(JSON.stringify(items.map(certJson), null, 2));
              return;
            }
            env.out(
              table([
                ['SERIAL', 'NAME', 'OWNER', 'KIND', 'STATUS', 'EXPIRES'],
                ...items.map((c) => [
                  c.serial,
                  c.commonName,
                  c.ownerName ?? '-',
                  c.kind,
                  c.status,
                  c.notAfter.toISOString().slice(0, 10),
                ]),
              ]),
            );
          },
          READ_ONLY,
        );
      },
    );
}

/** `cert revoke`: by name or serial; the CRL is re-signed and published before it returns. */
function registerRevoke(cert: Command, env: CliEnv): void {
  cert
    .command('revoke <nameOrSerial>')
    .description('revoke a certificate, re-sign the CRL and publish it to the server')
    .option(
      '--reason <reason>',
      'unspecified | keyCompromise | affiliationChanged | superseded | cessationOfOperation | ...',
    )
    .action(async (nameOrSerial: string, o: { reason?: string }, cmd: Command) => {
      await withContext(
        env,
        cmd,
        async (ctx) => {
          const {
            cert: c,
            crl,
            unpublished,
          } = await ctx.revocation.revoke({
            actor: 'cli',
            serialOrName: nameOrSerial,
            reason: o.reason,
          });
          const what = `revoked ${c.commonName} (serial ${c.serial}, reason ${c.revocationReason})`;
          if (unpublished.length === 0) env.out(`${what}; CRL #${crl.number} published`);
          else {
            env.out(`${what}; CRL #${crl.number} signed`);
            reportUnpublished(env, crl.number, unpublished);
          }
        },
        { quiet: true, publishes: true },
      );
    });
}

/** `crl`: not under `cert`, kept here because it reads the same revocation service. */
function registerCrl(program: Command, env: CliEnv): void {
  program
    .command('crl')
    .description('print the current CRL (re-signed first when due)')
    .option('--out <file>', 'write it to a file instead of stdout')
    .option('--publish', 'publish it to the server again (after a revoke whose publish failed)')
    .action(async (o: { out?: string; publish?: boolean }, cmd: Command) => {
      await withContext(env, cmd, async (ctx) => {
        const crl = await ctx.revocation.ensureFreshCrl();
        if (o.publish) {
          const unpublished = await ctx.revocation.publish();
          if (unpublished.length === 0) env.err(`CRL #${crl.number} published`);
          else reportUnpublished(env, crl.number, unpublished);
        }
        if (o.out) {
          writeFileAtomic(resolve(o.out), crl.pem, 0o644);
          env.err(`CRL #${crl.number} written to ${o.out} (next update ${crl.nextUpdate.toISOString()})`);
        } else env.out(crl.pem.trimEnd());
      });
    });
}

/**
 * A revocation is committed but its CRL did not reach a publisher (the API server unreachable): until
 * it does, the server still accepts the certificate. Said on stderr with exit 1, never as "published".
 */
function reportUnpublished(env: CliEnv, crlNumber: number, failures: readonly PublishFailure[]): void {
  for (const f of failures)
    env.err(`podgate: CRL #${crlNumber} was not published to ${f.publisher}: ${f.error}`);
  env.err(
    'podgate: the revocation is recorded; the server enforces it once the CRL reaches it: run `podgate crl --publish` (serve also publishes it at its next CRL refresh)',
  );
  process.exitCode = 1;
}
