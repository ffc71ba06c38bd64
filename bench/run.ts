// `npm run bench`: every benchmark in one run, each printing its figures next to baselines measured in
// the same run. Benchmarks never fail on a time; they only print.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SUITES: { file: string; run: string; print?: string }[] = [
  { file: 'pki.js', run: 'runPkiBench' },
  { file: 'services.js', run: 'runServicesBench', print: 'printServicesBench' },
  { file: 'revocation.js', run: 'runRevocationBench', print: 'printRevocationBench' },
  { file: 'web.js', run: 'runWebBench' },
  { file: 'issue-flood.js', run: 'runIssueFloodBench' },
  { file: 'backup.js', run: 'runBackupBench', print: 'printBackupBench' },
  { file: 'crl-size.js', run: 'runCrlSizeBench', print: 'printCrlSizeBench' },
  { file: 'access-bundle.js', run: 'runAccessBench', print: 'printAccessBench' },
  { file: 'access.js', run: 'runAccessBench' },
];

const only = process.argv.slice(2);
for (const suite of SUITES) {
  const name = suite.file.replace(/\.js$/, '');
  if (only.length > 0 && !only.includes(name)) continue;
  const path = fileURLToPath(new URL(`./${suite.file}`, import.meta.url));
  if (!existsSync(path)) continue;
  const mod = (await import(path)) as Record<string, (arg?: unknown) => Promise<unknown>>;
  const run = mod[suite.run];
  if (!run) continue;
  console.log(`\n##### ${name} #####`);
  const result = await run();
  if (suite.print) await mod[suite.print]!(result);
}
