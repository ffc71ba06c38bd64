// Child process for the crash test: issues and revokes in a loop, printing "ok" after each committed
// operation, until the parent kills it with SIGKILL.
import { testContext } from './context.js';

const dir = process.argv[2]!;
const ctx = await testContext(dir);
await ctx.users.create({ actor: 'worker', name: 'dave', role: 'user' });
for (let i = 0; ; i++) {
  const { cert } = await ctx.devices.issue({ actor: 'worker', owner: 'dave', commonName: `dave-${i}` });
  process.stdout.write('ok\n');
  if (i % 2 === 0) {
    await ctx.revocation.revoke({ actor: 'worker', serialOrName: cert.serial, reason: 'superseded' });
    process.stdout.write('ok\n');
  }
}
