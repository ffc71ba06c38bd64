// Child process for the disable crash test (issue 21, item 17): makes a user with three devices, then
// disables them and SIGKILLs itself at the moment the revocation starts (the first call to
// revokeInTransaction): the point between "disabled" and "revoked" when those were two transactions.
import { testContext } from './context.js';

const dir = process.argv[2]!;
const ctx = await testContext(dir);
await ctx.users.create({ actor: 'worker', name: 'erin', role: 'user' });
for (const name of ['erin.laptop', 'erin.phone', 'erin.tablet'])
  await ctx.devices.issue({ actor: 'worker', owner: 'erin', commonName: name });
process.stdout.write('issued\n');
ctx.revocation.revokeInTransaction = () => {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
};
await ctx.users.disable({ actor: 'worker', name: 'erin' });
process.stdout.write('not killed\n');
