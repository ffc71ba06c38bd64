import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { BadRequest } from '../../lib/errors.js';
import { writeFileAtomic } from '../../lib/fs-atomic.js';
import { withContext, type CliEnv } from '../env.js';

/** Refuses an --out that cannot be written before anything is issued. */
function outPath(out: string): string {
  if (out === '-') return out;
  const path = resolve(out);
  if (!existsSync(dirname(path)) || !statSync(dirname(path)).isDirectory())
    throw new BadRequest(`--out: directory ${dirname(path)} does not exist`, 'out');
  if (existsSync(path)) throw new BadRequest(`--out: ${path} already exists; choose another file`, 'out');
  return path;
}

/** `podgate cert renew NAME|SERIAL --out FILE`: new certificate and profile for the same device. */
export function registerRenew(cert: Command, env: CliEnv): void {
  cert
    .command('renew <nameOrSerial>')
    .description(
      'renew a device: new certificate and profile, same name; the old one is revoked as superseded after vpn.renewGraceDays',
    )
    .requiredOption('--out <file>', 'where to write the new .ovpn (mode 0600; "-" for stdout)')
    .option('--key-type <type>', 'ec-p256 | rsa-2048 | rsa-3072 (default: the old key type)')
    .option('--csr <file>', 'PKCS#10 request: the new private key stays on the device')
    .action(
      async (nameOrSerial: string, o: { out: string; keyType?: string; csr?: string }, cmd: Command) => {
        const out = outPath(o.out);
        let csrPem: string | undefined;
        if (o.csr) {
          try {
            csrPem = readFileSync(o.csr, 'utf8');
          } catch {
            throw new BadRequest(`--csr ${o.csr} cannot be read`, 'csr');
          }
        }
        await withContext(env, cmd, async (ctx) => {
          const old = ctx.revocation.resolve(nameOrSerial);
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
          if (out === '-') env.out(profile);
          else {
            try {
              writeFileAtomic(out, profile, 0o600);
            } catch (err) {
              // The profile holds the only copy of the new key: that certificate must not stay valid.
              await ctx.revocation.revoke({
                actor: 'cli',
                serialOrName: c.serial,
                reason: 'cessationOfOperation',
              });
              throw new BadRequest(`--out: cannot write ${out}: ${(err as Error).message}`, 'out');
            }
            env.out(`profile written to ${out}`);
          }
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
