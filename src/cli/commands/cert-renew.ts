import type { Command } from 'commander';
import { BadRequest } from '../../lib/errors.js';
import { withContext, type CliEnv } from '../env.js';
import { checkOutPath, deliverProfile, readCsrOption } from './profile-out.js';

/** `podgate cert renew NAME|SERIAL --out FILE`: new certificate and profile for the same device. */
export function registerRenew(cert: Command, env: CliEnv): void {
  cert
    .command('renew <nameOrSerial>')
    .description(
      'renew a device: new certificate and profile, same name; the old one is revoked as superseded after vpn.renewGraceDays',
    )
    .requiredOption('--out <file>', 'where to write the new .ovpn (mode 0600; "-" for stdout)')
    .option('--key-type <type>', 'ec-p256 | rsa-2048 | rsa-3072 (default: the old key type)')
    .option(
      '--csr <file>',
      'PKCS#10 request: the new private key stays on the device (required when the device was issued from one)',
    )
    .action(
      async (nameOrSerial: string, o: { out: string; keyType?: string; csr?: string }, cmd: Command) => {
        const out = checkOutPath(o.out);
        const csrPem = readCsrOption(o.csr);
        await withContext(env, cmd, async (ctx) => {
          const old = await ctx.revocation.resolve(nameOrSerial);
          if (old.keyFromCsr && !csrPem)
            throw new BadRequest(
              `--csr: ${old.commonName} was issued from a certificate request (its key never left the device); give a new one with --csr FILE`,
              'csr',
            );
          const {
            cert: c,
            profile,
            replaced,
          } = await ctx.renewal.renew({
            actor: 'cli',
            serial: old.serial,
            ...(o.keyType ? { keyType: o.keyType } : {}),
            ...(csrPem ? { csrPem } : {}),
          });
          if (await deliverProfile(ctx, env, out, profile, c.serial)) env.out(`profile written to ${out}`);
          const when =
            replaced.status === 'revoked'
              ? 'revoked now (superseded)'
              : `revoked as superseded on ${replaced.supersedeAt!.toISOString()}`;
          env.err(
            `renewed ${c.commonName}: new serial ${c.serial} valid until ${c.notAfter.toISOString()}; old serial ${replaced.serial} ${when}`,
          );
        });
      },
    );
}
