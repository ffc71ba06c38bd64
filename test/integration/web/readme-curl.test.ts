import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiContract } from '../../helpers/api-contract.js';
import { runCli } from '../../helpers/cli.js';
import { startServe, type Serving } from '../../helpers/serve.js';

const README = fileURLToPath(new URL('../../../../README.md', import.meta.url));

/** The ```sh blocks between the api-examples markers of README.md, in order. */
export function readmeExamples(text: string): string[] {
  const m = /<!-- api-examples:begin -->([\s\S]*?)<!-- api-examples:end -->/.exec(text);
  if (!m) throw new Error('README.md has no api-examples markers');
  return [...m[1]!.matchAll(/```sh\n([\s\S]*?)```/g)].map((b) => b[1]!);
}

/** Runs the blocks in one bash (the blocks share variables, like a reader's terminal); output per block. */
function runBlocks(
  blocks: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; outputs: string[]; stderr: string }> {
  const separator = '@@podgate-example@@';
  // the README's commands verbatim; only a separator line is printed between them
  const script = blocks.map((b) => `${b}\necho; echo '${separator}'\n`).join('');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      cwd,
      env: { PATH: process.env.PATH, HOME: cwd, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, outputs: out.split(`\n${separator}\n`).map((s) => s.trim()), stderr: err }),
    );
  });
}

describe('README: the curl examples of the API, run as written against `podgate serve`', function () {
  this.timeout(90_000);
  let dir: string;
  let serving: Serving | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'podgate-readme-'));
  });
  after(async () => {
    await serving?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('issue + download, list devices and certificates, revoke, list sessions, fetch the document', async () => {
    const blocks = readmeExamples(readFileSync(README, 'utf8'));
    assert.equal(blocks.length, 6, 'one block per task in README.md');
    const data = join(dir, 'data');
    const passwordFile = join(dir, 'admin-password');
    writeFileSync(passwordFile, 'readme examples 12345\n', { mode: 0o600 });
    serving = await startServe({ dataDir: data, env: { PODGATE_ADMIN_PASSWORD_FILE: passwordFile } });
    // the README's first step (outside the markers: a reader types their own URL and token)
    const made = await runCli([
      'token',
      'create',
      'admin',
      '--name',
      'scripts',
      '--data-dir',
      data,
      '--json',
    ]);
    assert.equal(made.code, 0, made.stderr);
    const token = (JSON.parse(made.stdout) as { token: string }).token;
    const work = join(dir, 'work');
    mkdirSync(work);

    const run = await runBlocks(blocks, work, { PODGATE_URL: serving.url, PODGATE_TOKEN: token });
    assert.equal(run.code, 0, `${run.stderr}\n${run.outputs.join('\n---\n')}`);
    const [issue, deviceList, certList, revoke, sessions, doc] = run.outputs;

    assert.equal(issue, '', 'the profile went to laptop.ovpn, not the terminal');
    const profile = readFileSync(join(work, 'laptop.ovpn'), 'utf8');
    assert.match(profile, /<cert>[\s\S]*<\/cert>/);
    // the inline key is a usable private key (parsed, not matched against its PEM label)
    const inlineKey = /<key>\n([\s\S]*?)<\/key>/.exec(profile)?.[1];
    assert.ok(inlineKey, 'the profile carries its key inline');
    assert.equal(createPrivateKey(inlineKey).type, 'private');
    const devices = JSON.parse(deviceList!) as { items: { serial: string }[] };
    const certs = JSON.parse(certList!) as { items: { serial: string }[] };
    const serial = devices.items[0]!.serial;
    assert.equal(devices.items[0]!.serial, certs.items.find((c) => c.serial === serial)?.serial);
    const revoked = JSON.parse(revoke!) as {
      cert: { serial: string; status: string; revocationReason: string };
    };
    assert.deepEqual(
      [revoked.cert.serial, revoked.cert.status, revoked.cert.revocationReason],
      [serial, 'revoked', 'keyCompromise'],
      'the SERIAL the first block read from the header is the one revoked',
    );
    assert.ok(Array.isArray((JSON.parse(sessions!) as { items: unknown[] }).items));
    assert.equal(doc, '');
    const document = JSON.parse(readFileSync(join(work, 'podgate-openapi.json'), 'utf8')) as {
      openapi: string;
    };
    assert.equal(document.openapi, '3.1.0');

    // the answers the README shows are what the document says (same validator as the API suites)
    const contract = apiContract();
    assert.deepEqual(contract.check('GET', '/api/v1/devices', 200, 'application/json', devices), []);
    assert.deepEqual(contract.check('GET', '/api/v1/certs', 200, 'application/json', certs), []);
    const revokePath = `/api/v1/certs/${serial}/revoke`;
    assert.deepEqual(contract.check('POST', revokePath, 200, 'application/json', revoked), []);
    const history = JSON.parse(sessions!) as unknown;
    assert.deepEqual(contract.check('GET', '/api/v1/sessions/history', 200, 'application/json', history), []);
  });
});
