import type { Command } from 'commander';
import { BadRequest } from '../../lib/errors.js';
import { CA_KEY_TYPES, type CaKeyType } from '../../pki/index.js';
import { rotateCa, retireOldCa } from '../../services/ca-rotation.js';
import { caStatus } from '../../services/ca-status.js';
import { withContext, type CliEnv } from '../env.js';

const RESTART =
  'a running `podgate server run` and `podgate serve` pick the new CA set up within seconds (openvpn restarts: clients reconnect); in cluster mode `serve` rolls the pod, or run `podgate k8s deploy`';

/** `podgate ca status | rotate [--key-type] | retire-old`. */
export function register(program: Command, env: CliEnv): void {
  const ca = program.command('ca').description('the certificate authority: status, rotation');

  ca.command('status')
    .description('the CAs in force, their expiry, and devices still on the old CA during a rotation')
    .action(async (_o, cmd: Command) => {
      await withContext(env, cmd, async (ctx, g) => {
        const s = await caStatus(ctx);
        if (g.json) {
          env.out(
            JSON.stringify(
              {
                ...s,
                onPreviousCa: s.onPreviousCa.map((c) => ({
                  serial: c.serial,
                  commonName: c.commonName,
                  owner: c.ownerName,
                })),
              },
              null,
              2,
            ),
          );
          return;
        }
        env.out(
          `current   ${s.current.commonName}  expires ${s.current.notAfter.toISOString().slice(0, 10)} (${s.current.daysLeft} days)`,
        );
        if (s.previous)
          env.out(
            `previous  ${s.previous.commonName}  expires ${s.previous.notAfter.toISOString().slice(0, 10)} (still trusted)`,
          );
        for (const c of s.onPreviousCa)
          env.out(`old CA    ${c.commonName} (${c.ownerName ?? '-'}) serial ${c.serial}`);
        for (const w of s.warnings) env.err(`warning: ${w}`);
      });
    });

  ca.command('rotate')
    .description(
      'make a new CA; the server trusts both until `ca retire-old`, new profiles come from the new one',
    )
    .option('--key-type <type>', `key type of the new CA: ${CA_KEY_TYPES.join(' | ')} (default: ca.keyType)`)
    .action(async (o: { keyType?: string }, cmd: Command) => {
      if (o.keyType !== undefined && !CA_KEY_TYPES.includes(o.keyType as CaKeyType))
        throw new BadRequest(`--key-type must be one of ${CA_KEY_TYPES.join(', ')}`, 'keyType');
      const rotated = await withContext(env, cmd, (ctx) =>
        rotateCa(ctx, { actor: 'cli', ...(o.keyType ? { keyType: o.keyType as CaKeyType } : {}) }),
      );
      // Reopened: the context now holds both CAs, so the CRL is signed once per CA and published.
      await withContext(env, cmd, async (ctx) => {
        await ctx.server.ensure();
        await ctx.revocation.resign('cli');
      });
      env.out(`new CA: ${rotated.commonName} (key id ${rotated.keyId})`);
      env.err(
        `${rotated.tagged} certificate(s) of the old CA keep working until renewed; then run \`podgate ca retire-old\``,
      );
      env.err(RESTART);
    });

  ca.command('retire-old')
    .description('end the overlap: the old CA is no longer trusted, its profiles stop connecting')
    .action(async (_o, cmd: Command) => {
      const r = await withContext(env, cmd, async (ctx) => retireOldCa(ctx, 'cli'));
      // Reopened with the new CA alone: a server certificate from it, and a CRL from it only.
      await withContext(env, cmd, async (ctx) => {
        await ctx.server.ensure();
        await ctx.revocation.resign('cli');
      });
      env.out(`retired ${r.commonName}`);
      if (r.stillValid > 0)
        env.err(`warning: ${r.stillValid} device(s) of the old CA were not renewed and stop working now`);
      env.err(RESTART);
    });
}
